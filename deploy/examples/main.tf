# A team's deployment of relctl with the module in ../terraform. The IAM policy the
# module writes covers exactly what relctl.toml uses.

terraform {
  required_version = ">= 1.3"
}

provider "aws" {
  region = "eu-west-2"
}

locals {
  account = "111111111111"
  region  = "eu-west-2"
}

module "relctl" {
  source = "../terraform"

  name               = "relctl"
  image              = "${local.account}.dkr.ecr.${local.region}.amazonaws.com/relctl:0.1.0"
  cluster_arn        = "arn:aws:ecs:${local.region}:${local.account}:cluster/platform"
  subnet_ids         = ["subnet-0a1b2c3d4e5f60718", "subnet-0f1e2d3c4b5a69788"]
  security_group_ids = ["sg-0123456789abcdef0"]
  config_toml        = file("${path.module}/relctl.toml")

  project_ids             = ["tre", "storage"]
  adopted_releases_tables = ["wellcome-releases-storage"]
  ssm_document_parameters = ["int-tfvars", "staging-tfvars"]
  assume_role_arns        = ["arn:aws:iam::333333333333:role/relctl-deployer"]
  codepipeline_arns = [
    "arn:aws:codepipeline:${local.region}:${local.account}:tre-terraform-int",
    "arn:aws:codepipeline:${local.region}:${local.account}:tre-terraform-staging",
  ]
  ecs_cluster_arns = ["arn:aws:ecs:${local.region}:${local.account}:cluster/storage-stage"]
  ecs_service_arns = [
    "arn:aws:ecs:${local.region}:${local.account}:service/storage-prod/storage-prod-bag-register",
    "arn:aws:ecs:${local.region}:${local.account}:service/storage-prod/storage-prod-notifier",
  ]
  ecr_repository_arns = [
    "arn:aws:ecr:${local.region}:${local.account}:repository/uk.ac.wellcome/bag_register",
    "arn:aws:ecr:${local.region}:${local.account}:repository/uk.ac.wellcome/notifier",
  ]
  task_role_passthrough_arns = ["arn:aws:iam::${local.account}:role/storage-prod-*"]

  # People and pipelines: who may deploy, and who may approve production.
  deployer_role_names = ["tre-developers", "storage-ci"]
  approver_role_names = ["release-managers"]
}

output "task_role_arn" {
  value = module.relctl.task_role_arn
}

output "deployer_policy_arn" {
  value = module.relctl.deployer_policy_arn
}
