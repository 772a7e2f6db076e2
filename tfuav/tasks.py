"""What differs between building a classifier and a detector: data, training, fine-tuning,
evaluation and what the exporters need. Everything else in the pipeline is shared."""
from pathlib import Path

from tfuav.errors import TfuavError

PR_PLOT = "pr_curves.png"


class ClassificationTask:
    name = "classification"

    def load_data(self, data_cfg):
        from tfuav.data import load_dataset
        return load_dataset(data_cfg)

    def describe(self, dataset):
        return (f"{dataset.source}: {len(dataset.class_names)} classes, "
                + ", ".join(f"{k} {len(v.labels)}" for k, v in dataset.splits.items()))

    def train(self, config, dataset, out_dir, resume):
        from tfuav.train import train_model
        return train_model(config.model.name, dataset, config.train, out_dir,
                           image_size=config.data.image_size, resume=resume,
                           augment=config.data.augment).model

    def fine_tune(self, model, dataset, config, epochs):
        from tfuav.train.loop import fit_model
        fit_model(model, dataset, config.train, epochs, augment=config.data.augment)
        return model

    def evaluate(self, model, tflite, dataset, out_dir):
        from tfuav.pipeline import evaluate_keras, evaluate_tflite
        test = dataset.splits["test"]
        return {"float": evaluate_keras(model, test, dataset.class_names),
                "int8": evaluate_tflite(tflite, test, dataset.class_names)}

    def export_args(self, info):
        return {}


class DetectionTask:
    name = "detection"

    def load_data(self, data_cfg):
        from tfuav.data.detection_dataset import load_detection_dataset
        return load_detection_dataset(data_cfg.path, image_size=data_cfg.image_size,
                                      count=data_cfg.synthetic_scenes, seed=data_cfg.seed,
                                      strict=data_cfg.strict)

    def describe(self, dataset):
        return (f"{dataset.source}: {len(dataset.class_names)} classes, "
                + ", ".join(f"{k} {len(v)} images" for k, v in dataset.splits.items()))

    def train(self, config, dataset, out_dir, resume):
        import tensorflow as tf

        from tfuav.models import build_model
        from tfuav.train.loop import save_model
        if resume:
            raise TfuavError("--resume is for classifiers; a detector build trains from scratch")
        tf.keras.utils.set_random_seed(config.train.seed)
        size = config.data.image_size
        model = build_model(config.model.name, (size, size, 3), len(dataset.class_names))
        self.fine_tune(model, dataset, config, config.train.epochs)
        save_model(model, Path(out_dir) / "model.keras")
        return model

    def fine_tune(self, model, dataset, config, epochs):
        from tfuav.train.detection import train_detector
        train_detector(model, dataset, config.train, epochs, augment=config.data.augment)
        return model

    def evaluate(self, model, tflite, dataset, out_dir):
        from tfuav.eval.detection import detect_keras, detect_tflite, evaluate_detections
        test = dataset.splits["test"]
        classes = len(dataset.class_names)
        stride = _stride(model)
        metrics = {"float": evaluate_detections(detect_keras(model, test.images, classes, stride),
                                                test, dataset.class_names),
                   "int8": evaluate_detections(detect_tflite(tflite, test.images, classes, stride),
                                               test, dataset.class_names,
                                               pr_plot=Path(out_dir) / PR_PLOT)}
        metrics["int8"]["pr_plot"] = PR_PLOT
        return metrics

    def export_args(self, info):
        from tfuav.export.detection import Detection
        return {"detection": Detection.for_model(info)}


def _stride(model):
    return int(model.input_shape[2]) // int(model.output_shape[2])


def task_for(model_name):
    from tfuav.models.registry import get_spec
    return DetectionTask() if get_spec(model_name).task == "detection" else ClassificationTask()
