# The two roles beside the controller (README "Security model"): deployers append
# intents; approvers record approvals. Both write attestations only under their own
# aws:userid, which is what makes an approval (and a request, for four eyes) proof of
# who made it. Attach these policies to your people's roles or groups
# (deployer_role_names / approver_role_names, or the output ARNs).

data "aws_iam_policy_document" "deployer" {
  statement {
    sid       = "ReadAndAppendReleases"
    actions   = ["dynamodb:GetItem", "dynamodb:Query", "dynamodb:PutItem", "dynamodb:UpdateItem"]
    resources = concat(local.releases_table_arns, [for arn in local.releases_table_arns : "${arn}/index/*"])
  }

  statement {
    sid       = "ReadControllerState"
    actions   = ["dynamodb:GetItem", "dynamodb:BatchGetItem"]
    resources = [aws_dynamodb_table.state.arn]
  }

  statement {
    # Only items keyed request#<their own aws:userid>: never an approval.
    sid       = "RecordOwnRequests"
    actions   = ["dynamodb:PutItem"]
    resources = [aws_dynamodb_table.approvals.arn]
    condition {
      test     = "ForAllValues:StringEquals"
      variable = "dynamodb:LeadingKeys"
      values   = ["request#$${aws:userid}"]
    }
  }

  statement {
    sid       = "ReadLabels"
    actions   = ["ssm:GetParametersByPath"]
    resources = [for p in var.project_ids : "arn:${local.partition}:ssm:${local.region}:${local.account}:parameter/${p}/images/*"]
  }

  statement {
    sid       = "WhoAmI"
    actions   = ["sts:GetCallerIdentity"]
    resources = ["*"]
  }
}

data "aws_iam_policy_document" "approver" {
  statement {
    sid       = "FindReleases"
    actions   = ["dynamodb:GetItem", "dynamodb:Query"]
    resources = concat(local.releases_table_arns, [for arn in local.releases_table_arns : "${arn}/index/*"])
  }

  statement {
    # Only items keyed approve#<their own aws:userid>. Approvers cannot write release
    # items: `relctl approve` then cannot show the approval on the entry (it says so),
    # and the controller finds the approval in this table within seconds anyway.
    sid       = "RecordOwnApprovals"
    actions   = ["dynamodb:PutItem"]
    resources = [aws_dynamodb_table.approvals.arn]
    condition {
      test     = "ForAllValues:StringEquals"
      variable = "dynamodb:LeadingKeys"
      values   = ["approve#$${aws:userid}"]
    }
  }

  statement {
    sid       = "ReadRequests"
    actions   = ["dynamodb:Query"]
    resources = ["${aws_dynamodb_table.approvals.arn}/index/subject_gsi"]
  }

  statement {
    sid       = "WhoAmI"
    actions   = ["sts:GetCallerIdentity"]
    resources = ["*"]
  }
}

resource "aws_iam_policy" "deployer" {
  name        = "${var.name}-deployer"
  description = "relctl deployers: create releases and append deployment intents"
  policy      = data.aws_iam_policy_document.deployer.json
}

resource "aws_iam_policy" "approver" {
  name        = "${var.name}-approver"
  description = "relctl approvers: record approvals under their own identity"
  policy      = data.aws_iam_policy_document.approver.json
}

resource "aws_iam_role_policy_attachment" "deployer" {
  for_each   = toset(var.deployer_role_names)
  role       = each.value
  policy_arn = aws_iam_policy.deployer.arn
}

resource "aws_iam_role_policy_attachment" "approver" {
  for_each   = toset(var.approver_role_names)
  role       = each.value
  policy_arn = aws_iam_policy.approver.arn
}
