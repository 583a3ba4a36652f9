# relctl as an ECS service: two tasks in different subnets, one leading and one a warm
# standby that takes the lease within its duration when the leader goes (the lease
# keeps only one acting), logs to CloudWatch as JSON,
# `relctl health` as the container health check, and a stop timeout longer than the
# controller's drain timeout so in-flight reconciles finish on SIGTERM.

resource "aws_cloudwatch_log_group" "relctl" {
  #checkov:skip=CKV_AWS_158:CloudWatch Logs encrypts log data by default; a customer-managed key is optional (var.kms_key_arn)
  name              = "/ecs/${var.name}"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
}

resource "aws_ecs_task_definition" "relctl" {
  family                   = var.name
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = var.cpu
  memory                   = var.memory
  execution_role_arn       = aws_iam_role.execution.arn
  task_role_arn            = aws_iam_role.task.arn

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = var.runtime_platform
  }

  tags = var.tags

  container_definitions = jsonencode([{
    name         = "relctl"
    image        = var.image
    essential    = true
    command      = ["controller"]
    stopTimeout  = 60
    portMappings = [{ containerPort = 9090, protocol = "tcp" }]
    # The configuration comes from Secrets Manager, not a plain environment value that
    # DescribeTaskDefinition shows to anyone who may read task definitions.
    secrets = [
      # By version: a changed configuration is a new task-definition revision, so the
      # service rolls out to it.
      { name = "RELCTL_CONFIG_TOML", valueFrom = "${aws_secretsmanager_secret.config.arn}:::${aws_secretsmanager_secret_version.config.version_id}" },
    ]
    environment = [
      { name = "RELCTL_TABLES__RELEASES", value = aws_dynamodb_table.releases.name },
      { name = "RELCTL_TABLES__STATE", value = aws_dynamodb_table.state.name },
      { name = "RELCTL_TABLES__APPROVALS", value = aws_dynamodb_table.approvals.name },
      { name = "RELCTL_CONTROLLER__DRAIN_TIMEOUT", value = "45s" },
      { name = "RELCTL_HTTP__LISTEN", value = "0.0.0.0:9090" },
      { name = "RELCTL_LOG_FORMAT", value = "json" },
    ]
    healthCheck = {
      command     = ["CMD", "/usr/local/bin/relctl", "health", "--addr", "127.0.0.1:9090"]
      interval    = 15
      timeout     = 5
      retries     = 3
      startPeriod = 30
    }
    logConfiguration = {
      logDriver = "awslogs"
      options = {
        awslogs-group         = aws_cloudwatch_log_group.relctl.name
        awslogs-region        = local.region
        awslogs-stream-prefix = "relctl"
        mode                  = "non-blocking" # a slow CloudWatch never stalls the controller
      }
    }
    linuxParameters        = { initProcessEnabled = true }
    readonlyRootFilesystem = true
  }])
}

resource "aws_ecs_service" "relctl" {
  name            = var.name
  cluster         = var.cluster_arn
  task_definition = aws_ecs_task_definition.relctl.arn
  desired_count   = 2
  launch_type     = "FARGATE"
  propagate_tags  = "TASK_DEFINITION"
  tags            = var.tags

  deployment_minimum_healthy_percent = 100
  deployment_maximum_percent         = 200

  # Tasks can read their configuration from the first start.
  depends_on = [aws_iam_role_policy.execution_config]

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  network_configuration {
    subnets          = var.subnet_ids
    security_groups  = var.security_group_ids
    assign_public_ip = false
  }
}

resource "aws_secretsmanager_secret" "config" {
  #checkov:skip=CKV2_AWS_57:the configuration is not a credential: it changes with the module, not on a rotation schedule
  #checkov:skip=CKV_AWS_149:encrypted with the AWS-managed key by default; a customer-managed key is optional (var.kms_key_arn)
  name_prefix = "${var.name}-config-"
  description = "relctl's configuration (relctl.toml), read by the controller task as RELCTL_CONFIG_TOML"
  kms_key_id  = var.kms_key_arn
  tags        = var.tags
}

resource "aws_secretsmanager_secret_version" "config" {
  secret_id     = aws_secretsmanager_secret.config.id
  secret_string = var.config_toml
}
