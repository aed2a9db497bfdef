"""Training loops shared by pretraining and SFT."""
