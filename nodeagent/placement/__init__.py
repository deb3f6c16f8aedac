"""DaemonSet placement checker (`nodeagent check-placement`).

sources (files, kustomize, stdin) and live (cluster, read-only) produce API objects; model turns them into
nodes, pods and DaemonSets; matching holds Kubernetes' matching semantics; rules decide per node; reality
compares a prediction with the cluster; report renders table or JSON.
"""
