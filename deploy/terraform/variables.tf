variable "name" {
  description = "Name for the service, its tables' prefix and its IAM role."
  type        = string
  default     = "relctl"
}

variable "image" {
  description = "relctl container image (deploy/Dockerfile), e.g. 123456789012.dkr.ecr.eu-west-1.amazonaws.com/relctl:0.1.0."
  type        = string
}

variable "cluster_arn" {
  description = "ECS cluster that runs relctl."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets for the relctl task (awsvpc networking)."
  type        = list(string)
}

variable "security_group_ids" {
  description = "Security groups for the relctl task: egress to AWS APIs; ingress on 9090 from Prometheus only."
  type        = list(string)
}

variable "config_toml" {
  description = "relctl's configuration (config/relctl.example.toml), passed as RELCTL_CONFIG_TOML. Table names are set by this module."
  type        = string
}

variable "project_ids" {
  description = "Projects relctl deploys: it may write SSM parameters only under /{project}/images/*."
  type        = list(string)
}

variable "adopted_releases_tables" {
  description = "Existing per-project releases tables (the older tooling's wellcome-releases-{project}) relctl reads and writes status to."
  type        = list(string)
  default     = []
}

variable "ssm_document_parameters" {
  description = "Names of SSM JSON document parameters (tfvars) that ssm_json_document pins patch."
  type        = list(string)
  default     = []
}

variable "assume_role_arns" {
  description = "Roles in other accounts named by environments' role_arn."
  type        = list(string)
  default     = []
}

variable "codepipeline_arns" {
  description = "Pipelines codepipeline actuators start and follow."
  type        = list(string)
  default     = []
}

variable "ecs_service_arns" {
  description = "ECS services ecs actuators redeploy (same account)."
  type        = list(string)
  default     = []
}

variable "ecs_cluster_arns" {
  description = "Clusters whose services ecs actuators discover by tags."
  type        = list(string)
  default     = []
}

variable "lambda_function_arns" {
  description = "Lambda functions lambda actuators update."
  type        = list(string)
  default     = []
}

variable "ecr_repository_arns" {
  description = "ECR repositories ecr_tag pins move tags in."
  type        = list(string)
  default     = []
}

variable "task_role_passthrough_arns" {
  description = "Execution and task roles of the ECS services relctl redeploys (RegisterTaskDefinition needs iam:PassRole on them)."
  type        = list(string)
  default     = []
}

variable "cpu" {
  type    = number
  default = 256
}

variable "memory" {
  type    = number
  default = 512
}

variable "log_retention_days" {
  type    = number
  default = 30
}

variable "deployer_role_names" {
  description = "IAM roles that may create releases and request deployments (the deployer policy is attached)."
  type        = list(string)
  default     = []
}

variable "approver_role_names" {
  description = "IAM roles that may approve deployments to protected environments (the approver policy is attached)."
  type        = list(string)
  default     = []
}
