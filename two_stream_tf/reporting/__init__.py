"""What runs show a user: TensorBoard summaries (`summaries`) and matplotlib figures
(`figures`) of inputs, accuracies and confusion."""
