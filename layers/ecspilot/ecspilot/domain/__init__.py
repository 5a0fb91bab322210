"""The domain: the config contract, images, task definitions, placement and the cluster query language, schedule expressions, event models, the plan's types. Pure: no AWS call."""
