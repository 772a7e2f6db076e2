"""Training of the model zoo: RMSprop recipe, distribution strategies, checkpoints and resume."""
from tfuav.train.loop import TrainResult, compile_model, fit_model, train_model
from tfuav.train.schedule import lr_for_epoch
from tfuav.train.strategy import STRATEGIES, get_strategy

__all__ = ["STRATEGIES", "TrainResult", "compile_model", "fit_model", "get_strategy",
           "lr_for_epoch", "train_model"]
