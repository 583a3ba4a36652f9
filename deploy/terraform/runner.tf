# The Terraform runner (README "Terraform runs as ECS tasks"): a task definition that
# runs `relctl runner` from the runner image (deploy/Dockerfile's `runner` target:
# relctl plus a pinned Terraform), with a role of its own that holds what the team's
# Terraform manages (var.runner_policy_json) — the controller holds none of it. Created
# when var.runner_image is set; point an environment's `runner = { kind = "ecs_task",
# task_definition = <runner_task_definition_family>, log_group = <runner_log_group>,
# pass_roles = [<runner_role_arn>, <runner_execution_role_arn>], … }` at it.

locals {
  runner = var.runner_image == null ? {} : { runner = true }
}

data "aws_caller_identity" "current" {}

# ECS may assume the runner's roles only for tasks in this account.
data "aws_iam_policy_document" "assume_runner" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [data.aws_caller_identity.current.account_id]
    }
  }
}

resource "aws_cloudwatch_log_group" "runner" {
  #checkov:skip=CKV_AWS_158:CloudWatch Logs encrypts log data by default; a customer-managed key is optional (var.kms_key_arn)
  for_each          = local.runner
  name              = "/ecs/${var.name}-runner"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
}

resource "aws_iam_role" "runner" {
  for_each           = local.runner
  name               = "${var.name}-runner"
  assume_role_policy = data.aws_iam_policy_document.assume_runner.json
}

resource "aws_iam_role_policy" "runner" {
  for_each = local.runner
  name     = "${var.name}-runner-terraform"
  role     = aws_iam_role.runner["runner"].id
  policy   = var.runner_policy_json
}

resource "aws_iam_role" "runner_execution" {
  for_each           = local.runner
  name               = "${var.name}-runner-execution"
  assume_role_policy = data.aws_iam_policy_document.assume_runner.json
}

resource "aws_iam_role_policy_attachment" "runner_execution" {
  for_each   = local.runner
  role       = aws_iam_role.runner_execution["runner"].name
  policy_arn = "arn:${local.partition}:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"
}

resource "aws_ecs_task_definition" "runner" {
  for_each                 = local.runner
  family                   = "${var.name}-runner"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  # Terraform with the AWS provider needs more than the controller does.
  cpu                = var.runner_cpu
  memory             = var.runner_memory
  execution_role_arn = aws_iam_role.runner_execution["runner"].arn
  task_role_arn      = aws_iam_role.runner["runner"].arn

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = var.runtime_platform
  }

  # The workspace and Terraform's plugin cache: the root filesystem stays read-only.
  ephemeral_storage {
    size_in_gib = 30
  }
  volume {
    name = "scratch"
  }

  container_definitions = jsonencode([{
    name        = "runner"
    image       = var.runner_image
    essential   = true
    command     = ["runner"]
    stopTimeout = 120 # Terraform's interrupt grace, then SIGKILL
    environment = [
      { name = "HOME", value = "/scratch" },
      { name = "TMPDIR", value = "/scratch" },
      { name = "TF_IN_AUTOMATION", value = "1" },
      { name = "TF_PLUGIN_CACHE_DIR", value = "/scratch/plugins" },
    ]
    mountPoints     = [{ sourceVolume = "scratch", containerPath = "/scratch" }]
    linuxParameters = { initProcessEnabled = true }
    logConfiguration = {
      logDriver = "awslogs"
      options = {
        awslogs-group         = aws_cloudwatch_log_group.runner["runner"].name
        awslogs-region        = local.region
        awslogs-stream-prefix = "runner"
        mode                  = "blocking" # every line, for the status's tail
      }
    }
    readonlyRootFilesystem = true
  }])

  tags = var.tags
}
