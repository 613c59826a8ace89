"""Two-stream ConvNets for action recognition: data pipelines, models, training, fusion."""
