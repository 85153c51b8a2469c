"""Audio sources of the demo corpus (`leaf_ssl.data.demo`): one module per probe task.

Each source module offers `check_available()` (a `MissingToolError` naming the apt package when
something is not installed) and `plan(scale)` (a `TaskPlan`: class names, render jobs, settings,
split rule). These modules never import TensorFlow: their jobs run in worker processes.
"""
