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

output "runner_task_definition_family" {
  description = "The runner's task_definition, for `runner = { kind = \"ecs_task\", … }`."
  value       = try(aws_ecs_task_definition.runner["runner"].family, null)
}

output "runner_log_group" {
  value = try(aws_cloudwatch_log_group.runner["runner"].name, null)
}

output "runner_role_arns" {
  description = "The runner's task and execution roles: the ecs_task runner's `pass_roles`."
  value       = try([aws_iam_role.runner["runner"].arn, aws_iam_role.runner_execution["runner"].arn], [])
}
