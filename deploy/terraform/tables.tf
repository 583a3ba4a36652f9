# The releases table (RFC 013 shape, stream on, the older tool's two indexes) and
# relctl's own state table. All with point-in-time recovery and, optionally, a
# customer-managed KMS key.

resource "aws_dynamodb_table" "releases" {
  #checkov:skip=CKV_AWS_119:encrypted at rest by default; a customer-managed key is optional (var.kms_key_arn)
  name         = "${var.name}-releases"
  billing_mode = "PAY_PER_REQUEST"
  # The deployment history and the approvals: never removed by a stray destroy.
  deletion_protection_enabled = true
  hash_key                    = "release_id"
  stream_enabled              = true
  stream_view_type            = "NEW_AND_OLD_IMAGES"

  attribute {
    name = "release_id"
    type = "S"
  }

  attribute {
    name = "project_id"
    type = "S"
  }

  attribute {
    name = "date_created"
    type = "S"
  }

  attribute {
    name = "last_date_deployed"
    type = "S"
  }

  global_secondary_index {
    name            = "project_gsi"
    hash_key        = "project_id"
    range_key       = "date_created"
    projection_type = "ALL"
  }

  global_secondary_index {
    name            = "deployment_gsi"
    hash_key        = "project_id"
    range_key       = "last_date_deployed"
    projection_type = "ALL"
  }

  point_in_time_recovery {
    enabled = true
  }

  # With var.kms_key_arn: a customer-managed key; otherwise DynamoDB's default
  # encryption at rest (an AWS-owned key).
  server_side_encryption {
    enabled     = var.kms_key_arn != null
    kms_key_arn = var.kms_key_arn
  }
}

resource "aws_dynamodb_table" "state" {
  #checkov:skip=CKV_AWS_119:encrypted at rest by default; a customer-managed key is optional (var.kms_key_arn)
  name         = "${var.name}-state"
  billing_mode = "PAY_PER_REQUEST"
  # The deployment history and the approvals: never removed by a stray destroy.
  deletion_protection_enabled = true
  hash_key                    = "pk"

  attribute {
    name = "pk"
    type = "S"
  }

  point_in_time_recovery {
    enabled = true
  }

  # With var.kms_key_arn: a customer-managed key; otherwise DynamoDB's default
  # encryption at rest (an AWS-owned key).
  server_side_encryption {
    enabled     = var.kms_key_arn != null
    kms_key_arn = var.kms_key_arn
  }
}

# Approvals and requests, keyed by the writer's own AWS identity: the deployer and
# approver policies (roles.tf) allow PutItem only where the hash key equals
# ${aws:userid}, so an item's key proves who wrote it. The controller reads a
# deployment's attestations by subject on subject_gsi.
resource "aws_dynamodb_table" "approvals" {
  #checkov:skip=CKV_AWS_119:encrypted at rest by default; a customer-managed key is optional (var.kms_key_arn)
  name         = "${var.name}-approvals"
  billing_mode = "PAY_PER_REQUEST"
  # The deployment history and the approvals: never removed by a stray destroy.
  deletion_protection_enabled = true
  hash_key                    = "principal"
  range_key                   = "subject"

  attribute {
    name = "principal"
    type = "S"
  }

  attribute {
    name = "subject"
    type = "S"
  }

  global_secondary_index {
    name            = "subject_gsi"
    hash_key        = "subject"
    range_key       = "principal"
    projection_type = "ALL"
  }

  point_in_time_recovery {
    enabled = true
  }

  # With var.kms_key_arn: a customer-managed key; otherwise DynamoDB's default
  # encryption at rest (an AWS-owned key).
  server_side_encryption {
    enabled     = var.kms_key_arn != null
    kms_key_arn = var.kms_key_arn
  }
}
