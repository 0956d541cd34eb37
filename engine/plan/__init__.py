"""What a person asks for (TrainConfig) and the one plan it resolves to, made once."""
