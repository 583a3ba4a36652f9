output "releases_table" {
  value = aws_dynamodb_table.releases.name
}

output "releases_stream_arn" {
  value = aws_dynamodb_table.releases.stream_arn
}

output "state_table" {
  value = aws_dynamodb_table.state.name
}

output "task_role_arn" {
  description = "Trust this role from the role_arn roles in other accounts."
  value       = aws_iam_role.task.arn
}

output "approvals_table" {
  value = aws_dynamodb_table.approvals.name
}

output "deployer_policy_arn" {
  description = "Attach to the roles of people and pipelines that deploy."
  value       = aws_iam_policy.deployer.arn
}

output "approver_policy_arn" {
  description = "Attach to the roles of people who approve deployments to protected environments."
  value       = aws_iam_policy.approver.arn
}
