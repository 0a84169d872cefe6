"""Argo Workflows on Kubernetes: the WorkflowTemplate, and submitting and following a study."""
