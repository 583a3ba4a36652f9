# The relctl task's roles. Its permissions are the policy `relctl iam-policy` prints for
# the configuration (var.task_policy_json): least privilege derived from the code's own
# calls, proven against every call the test suite makes (tests/e2e/iam).

data "aws_region" "current" {}
data "aws_partition" "current" {}

locals {
  region    = data.aws_region.current.name
  partition = data.aws_partition.current.partition
}

data "aws_iam_policy_document" "assume_by_ecs_tasks" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "task" {
  name               = "${var.name}-task"
  assume_role_policy = data.aws_iam_policy_document.assume_by_ecs_tasks.json
}

resource "aws_iam_role" "execution" {
  name               = "${var.name}-execution"
  assume_role_policy = data.aws_iam_policy_document.assume_by_ecs_tasks.json
}

resource "aws_iam_role_policy_attachment" "execution" {
  role       = aws_iam_role.execution.name
  policy_arn = "arn:${local.partition}:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"
}

resource "aws_iam_role_policy" "task" {
  name   = "${var.name}-least-privilege"
  role   = aws_iam_role.task.id
  policy = var.task_policy_json
}

# The execution role reads the configuration secret into the container, nothing else.
data "aws_iam_policy_document" "read_config" {
  statement {
    actions   = ["secretsmanager:GetSecretValue"]
    resources = [aws_secretsmanager_secret.config.arn]
  }
  dynamic "statement" {
    for_each = var.kms_key_arn == null ? [] : [var.kms_key_arn]
    content {
      actions   = ["kms:Decrypt"]
      resources = [statement.value]
      # Only as Secrets Manager decrypts the secret: the key is shared with the tables.
      condition {
        test     = "StringEquals"
        variable = "kms:ViaService"
        values   = ["secretsmanager.${local.region}.amazonaws.com"]
      }
    }
  }
}

resource "aws_iam_role_policy" "execution_config" {
  name   = "${var.name}-read-config"
  role   = aws_iam_role.execution.id
  policy = data.aws_iam_policy_document.read_config.json
}
