# A team's deployment of relctl with the module in ../terraform. The IAM policies are
# relctl's own least-privilege policies for relctl.toml; policies/tre-prod.json is for
# the role relctl assumes in the production account (tre/prod's role_arn), which must
# trust module.relctl.task_role_arn.

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

  # What `relctl iam-policy` prints for relctl.toml (scripts/example-policies writes
  # them; a test fails when they no longer match the configuration).
  task_policy_json     = file("${path.module}/policies/controller.json")
  deployer_policy_json = file("${path.module}/policies/deployer.json")
  approver_policy_json = file("${path.module}/policies/approver.json")

  # The platform's Terraform (relctl.toml's platform/prod) runs in runner tasks with
  # their own role: Terraform's permissions are there, not on the controller.
  runner_image       = "${local.account}.dkr.ecr.${local.region}.amazonaws.com/relctl-runner:0.1.0"
  runner_policy_json = file("${path.module}/runner-policy.json")

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

output "runner_task_definition_family" {
  value = module.relctl.runner_task_definition_family
}
