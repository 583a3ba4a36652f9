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

variable "task_policy_json" {
  description = "The controller's policy: `relctl iam-policy --config relctl.toml --account ACCOUNT --region REGION` (with the RELCTL_TABLES__* the task gets)."
  type        = string
}

variable "deployer_policy_json" {
  description = "`relctl iam-policy --role deployer …` for the same configuration."
  type        = string
}

variable "approver_policy_json" {
  description = "`relctl iam-policy --role approver …` for the same configuration."
  type        = string
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
  description = "How long the controller's logs are kept (the deployment history itself is in the tables)."
  type        = number
  default     = 365
}

variable "kms_key_arn" {
  description = "Customer-managed KMS key for the tables and the log group; null for the services' default encryption. The key policy must let CloudWatch Logs use it."
  type        = string
  default     = null
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

variable "runner_image" {
  description = "The Terraform runner image (deploy/Dockerfile's `runner` target); null creates no runner."
  type        = string
  default     = null
}

variable "runner_policy_json" {
  description = "What the team's Terraform needs (and s3:GetObject/GetObjectVersion on its sources, its state bucket): the runner's role, never the controller's."
  type        = string
  default     = "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Deny\",\"Action\":\"*\",\"Resource\":\"*\"}]}"
}

variable "runner_cpu" {
  type    = number
  default = 1024
}

variable "runner_memory" {
  description = "Terraform with the AWS provider needs 1-2 GB."
  type        = number
  default     = 2048
}

variable "runtime_platform" {
  description = "X86_64 or ARM64, as the images were built."
  type        = string
  default     = "X86_64"
}

variable "tags" {
  description = "Tags for the task definitions (and, propagated, their tasks)."
  type        = map(string)
  default     = {}
}
