# The two roles beside the controller (README "Security model"): deployers append
# intents; approvers record approvals. Both write attestations only under their own
# aws:userid, which is what makes an approval (and a request, for four eyes) proof of
# who made it. Attach these policies to your people's roles or groups
# (deployer_role_names / approver_role_names, or the output ARNs). The policies are
# what `relctl iam-policy --role deployer|approver` prints for the configuration.

resource "aws_iam_policy" "deployer" {
  name        = "${var.name}-deployer"
  description = "relctl deployers: create releases and append deployment intents"
  policy      = var.deployer_policy_json
}

resource "aws_iam_policy" "approver" {
  name        = "${var.name}-approver"
  description = "relctl approvers: record approvals under their own identity"
  policy      = var.approver_policy_json
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
