# Least privilege for the relctl task: each statement names exactly the resources the
# configuration uses, and statements for features not in use are left out.

data "aws_caller_identity" "current" {}
data "aws_region" "current" {}
data "aws_partition" "current" {}

locals {
  account   = data.aws_caller_identity.current.account_id
  region    = data.aws_region.current.name
  partition = data.aws_partition.current.partition

  adopted_table_arns  = [for t in var.adopted_releases_tables : "arn:${local.partition}:dynamodb:${local.region}:${local.account}:table/${t}"]
  releases_table_arns = concat([aws_dynamodb_table.releases.arn], local.adopted_table_arns)

  image_parameter_arns = [for p in var.project_ids : "arn:${local.partition}:ssm:${local.region}:${local.account}:parameter/${p}/images/*"]
  document_parameter_arns = [
    for p in var.ssm_document_parameters :
    "arn:${local.partition}:ssm:${local.region}:${local.account}:parameter/${trimprefix(p, "/")}"
  ]
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

data "aws_iam_policy_document" "task" {
  statement {
    sid = "ReleasesTables"
    actions = [
      "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:Query",
      "dynamodb:DescribeTable",
    ]
    resources = concat(local.releases_table_arns, [for arn in local.releases_table_arns : "${arn}/index/*"])
  }

  statement {
    sid       = "ReleasesStreams"
    actions   = ["dynamodb:DescribeStream", "dynamodb:GetShardIterator", "dynamodb:GetRecords", "dynamodb:ListStreams"]
    resources = [for arn in local.releases_table_arns : "${arn}/stream/*"]
  }

  statement {
    # Every leader write is a TransactWriteItems with a ConditionCheck on the lease:
    # IAM authorises each item's own action (PutItem, UpdateItem, ConditionCheckItem).
    sid = "StateTable"
    actions = [
      "dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:PutItem", "dynamodb:UpdateItem",
      "dynamodb:ConditionCheckItem", "dynamodb:Scan", "dynamodb:DescribeTable",
    ]
    resources = [aws_dynamodb_table.state.arn]
  }

  statement {
    # Reads who approved and who requested a deployment; writes nothing there.
    sid       = "ApprovalsTable"
    actions   = ["dynamodb:Query", "dynamodb:DescribeTable"]
    resources = [aws_dynamodb_table.approvals.arn, "${aws_dynamodb_table.approvals.arn}/index/subject_gsi"]
  }

  statement {
    sid       = "ImageParameters"
    actions   = ["ssm:GetParameter", "ssm:GetParameters", "ssm:GetParametersByPath", "ssm:PutParameter", "ssm:LabelParameterVersion"]
    resources = concat(local.image_parameter_arns, local.document_parameter_arns)
  }

  statement {
    sid       = "ReadImagePaths"
    actions   = ["ssm:GetParametersByPath"]
    resources = [for p in var.project_ids : "arn:${local.partition}:ssm:${local.region}:${local.account}:parameter/${p}/images"]
  }

  statement {
    sid       = "CallerIdentity"
    actions   = ["sts:GetCallerIdentity"]
    resources = ["*"]
  }

  dynamic "statement" {
    for_each = length(var.assume_role_arns) > 0 ? [1] : []
    content {
      sid       = "CrossAccountEnvironments"
      actions   = ["sts:AssumeRole"]
      resources = var.assume_role_arns
    }
  }

  dynamic "statement" {
    for_each = length(var.codepipeline_arns) > 0 ? [1] : []
    content {
      sid       = "Pipelines"
      actions   = ["codepipeline:StartPipelineExecution", "codepipeline:GetPipelineExecution", "codepipeline:GetPipelineState"]
      resources = var.codepipeline_arns
    }
  }

  dynamic "statement" {
    for_each = length(var.ecs_service_arns) + length(var.ecs_cluster_arns) > 0 ? [1] : []
    content {
      sid       = "EcsServices"
      actions   = ["ecs:DescribeServices", "ecs:UpdateService", "ecs:ListServices"]
      resources = concat(var.ecs_service_arns, var.ecs_cluster_arns, [for c in var.ecs_cluster_arns : "${replace(c, ":cluster/", ":service/")}/*"])
    }
  }

  dynamic "statement" {
    for_each = length(var.ecs_service_arns) + length(var.ecs_cluster_arns) > 0 ? [1] : []
    content {
      # Task definitions have no resource-level permissions for these two actions.
      sid       = "EcsTaskDefinitions"
      actions   = ["ecs:DescribeTaskDefinition", "ecs:RegisterTaskDefinition"]
      resources = ["*"]
    }
  }

  dynamic "statement" {
    for_each = length(var.task_role_passthrough_arns) > 0 ? [1] : []
    content {
      sid       = "PassServiceRoles"
      actions   = ["iam:PassRole"]
      resources = var.task_role_passthrough_arns
    }
  }

  dynamic "statement" {
    for_each = length(var.lambda_function_arns) > 0 ? [1] : []
    content {
      sid       = "LambdaFunctions"
      actions   = ["lambda:GetFunction", "lambda:UpdateFunctionCode"]
      resources = var.lambda_function_arns
    }
  }

  dynamic "statement" {
    for_each = length(var.ecr_repository_arns) > 0 ? [1] : []
    content {
      sid       = "EcrTags"
      actions   = ["ecr:BatchGetImage", "ecr:PutImage"]
      resources = var.ecr_repository_arns
    }
  }
}

resource "aws_iam_role_policy" "task" {
  name   = "${var.name}-least-privilege"
  role   = aws_iam_role.task.id
  policy = data.aws_iam_policy_document.task.json
}
