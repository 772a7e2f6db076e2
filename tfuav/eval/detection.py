"""Detection with a Keras detector or its int8 TFLite model, and COCO evaluation of the result.

Both paths preprocess exactly as training does (tfuav.data.preprocess) and decode the single
all-sigmoid head with tfuav.runtime.decode_head; the TFLite path quantizes the input and
dequantizes the output with the model's own parameters (tfuav.quantization).
"""
import numpy as np

from tfuav.data.detection import detections_to_coco
from tfuav.errors import TfuavError
from tfuav.eval.coco import evaluate_coco, metrics_of, plot_pr_curves
from tfuav.quantization import dequantize, quantize
from tfuav.runtime.detect import decode_head

TOP_K = 100                 # COCO scores at most 100 detections per image
SCORE_THRESHOLD = 0.05


def _decode_all(outputs, num_classes, stride, top_k, score_threshold):
    return [decode_head(out, num_classes, stride, top_k=top_k, score_threshold=score_threshold)
            for out in outputs]


def detect_keras(model, images, num_classes, stride=4, top_k=TOP_K,
                 score_threshold=SCORE_THRESHOLD, batch_size=32):
    """Per image (boxes float32 [K, 4] xywh px, scores [K], classes [K]) for uint8 images."""
    from tfuav.data import preprocess
    images = np.asarray(images)
    outputs = []
    for start in range(0, len(images), batch_size):
        batch = preprocess(images[start:start + batch_size])
        outputs.extend(np.asarray(model(batch, training=False)))
    return _decode_all(outputs, num_classes, stride, top_k, score_threshold)


def tflite_head_outputs(tflite_bytes, images):
    """The dequantized float head output [H', W', C + 4] of a detector .tflite per uint8 image."""
    from ai_edge_litert import interpreter as litert

    from tfuav.data import preprocess
    interp = litert.Interpreter(model_content=bytes(tflite_bytes))
    interp.allocate_tensors()
    inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
    in_scale, in_zero = inp["quantization"]
    out_scale, out_zero = out["quantization"]
    outputs = []
    for image in np.asarray(images):
        x = quantize(preprocess(image)[None], in_scale, in_zero, inp["dtype"])
        interp.set_tensor(inp["index"], x)
        interp.invoke()
        outputs.append(dequantize(interp.get_tensor(out["index"])[0], out_scale, out_zero))
    return outputs


def detect_tflite(tflite_bytes, images, num_classes=None, stride=4, top_k=TOP_K,
                  score_threshold=SCORE_THRESHOLD):
    """detect_keras() for a detector converted to TFLite (int8 or float I/O);
    num_classes None: the output's channels minus 4."""
    outputs = tflite_head_outputs(tflite_bytes, images)
    if num_classes is None:
        num_classes = int(outputs[0].shape[-1]) - 4 if outputs else 0
    return _decode_all(outputs, num_classes, stride, top_k, score_threshold)


def split_ground_truth(split, class_names):
    """A DetectionSplit as a COCO ground-truth dict: image ids 1..N, category ids 1..C,
    ignored objects as iscrowd, ignored regions on the image records."""
    size = split.images.shape[1:3]
    images, annotations = [], []
    for i, (ann, regions) in enumerate(zip(split.annotations, split.ignored_regions), start=1):
        record = {"id": i, "file_name": split.paths[i - 1] if split.paths else f"{i}.png",
                  "width": int(size[1]), "height": int(size[0])}
        if len(regions):
            record["ignored_regions"] = np.asarray(regions, float).reshape(-1, 4).tolist()
        images.append(record)
        ignore = ann.get("ignore", np.zeros(len(ann["boxes"]), bool))
        for box, label, ign in zip(ann["boxes"], ann["labels"], ignore):
            x, y, w, h = (float(v) for v in box)
            annotations.append({"id": len(annotations) + 1, "image_id": i,
                                "category_id": int(label) + 1, "bbox": [x, y, w, h],
                                "area": w * h, "iscrowd": int(bool(ign))})
    categories = [{"id": k + 1, "name": name} for k, name in enumerate(class_names)]
    return {"images": images, "annotations": annotations, "categories": categories}


def evaluate_detections(per_image_detections, split, class_names, pr_plot=None):
    """COCO metrics (tfuav.eval.coco.coco_metrics: AP, AP50, AP75, AP_small/medium/large, AR*,
    per_class) of detections [(boxes xywh, scores, classes), ...] in the order of
    split.images, against the split's ground truth; ignored regions are applied.
    pr_plot: a .png path for the per-class precision-recall curves at IoU 0.5."""
    if len(per_image_detections) != len(split):
        raise TfuavError(f"{len(per_image_detections)} detection lists for {len(split)} images")
    gt = split_ground_truth(split, class_names)
    dets = detections_to_coco({i: (boxes, scores, np.asarray(classes) + 1)
                               for i, (boxes, scores, classes)
                               in enumerate(per_image_detections, start=1)})
    regions = "auto" if any(len(r) for r in split.ignored_regions) else None
    ev = evaluate_coco(gt, dets, ignore_regions=regions)
    if pr_plot is not None:
        plot_pr_curves(ev, pr_plot)
    return metrics_of(ev)
