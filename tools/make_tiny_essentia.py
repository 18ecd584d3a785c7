"""Write tiny stand-ins for the Essentia Discogs-EffNet models into a models folder, for tests and benchmarks.

    .venv/bin/python tools/make_tiny_essentia.py MODELS_DIR [--seed 0]

Each stand-in is a frozen TensorFlow GraphDef (``.pb``) with the node names, dtypes and
static ranks of the real file, plus the model's ``.json`` metadata (``classes``,
``schema``), written where :func:`sat_mir.models.locate` looks for
``sat_mir.models.essentia_tf.MODELS`` (``<MODELS_DIR>/essentia/<file>``).  Essentia
loads them with the very calls that load the real models:

- ``discogs-effnet-bs64-1.pb``: placeholder ``serving_default_melspectrogram``
  ``[None, 128, 96]`` → mean and max over time → dense + tanh → ``[n, 1280]`` embeddings →
  dense + sigmoid → ``[n, 400]`` activations; both leave through the two-output op
  ``PartitionedCall`` (``:0`` activations, ``:1`` embeddings), as in the real model.
- genre400 head: ``serving_default_model_Placeholder`` ``[None, 1280]`` → ``PartitionedCall:0``
  (sigmoid, 400 classes named ``Genre---Style``).
- mood/theme (56) and instrument (40) heads: ``model/Placeholder`` → ``model/Sigmoid``.
- danceability, tonal/atonal and voice/instrumental heads: ``model/Placeholder`` →
  ``model/Softmax`` (2 classes).

No TensorFlow is needed: the GraphDef messages are built with ``protobuf`` from a
descriptor written here with the field numbers of TensorFlow's public ``.proto`` files
(``graph.proto``, ``node_def.proto``, ``attr_value.proto``, ``tensor.proto``,
``tensor_shape.proto``, ``versions.proto``).  Weights are computed inside the graph from
a range of integers (``(i * a) mod p`` → ``sin``), so every file is a few hundred bytes,
identical on every machine, and uses only ops TensorFlow 2.5 (Essentia's bundled
libtensorflow) knows.  Labels are synthetic (``genre03---style03_1``); ``classes``
overrides them per model so a test can check which labels the extractor reports.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

__all__ = ["STANDIN_CLASSES", "graph_def_classes", "make_tiny_essentia"]

# Model key -> (file stem, sub-folder under https://essentia.upf.edu/models/), as in essentia_tf.MODELS.
_FILES = {
    "effnet": "discogs-effnet-bs64-1",
    "genre": "genre_discogs400-discogs-effnet-1",
    "mood": "mtg_jamendo_moodtheme-discogs-effnet-1",
    "instrument": "mtg_jamendo_instrument-discogs-effnet-1",
    "danceability": "danceability-discogs-effnet-1",
    "tonality": "tonal_atonal-discogs-effnet-1",
    "voice": "voice_instrumental-discogs-effnet-1",
}

_SOFTMAX = ("danceability", "tonality", "voice")  # two-class heads; the others are sigmoids

_DT_FLOAT, _DT_INT32, _DT_INT64 = 1, 3, 9  # tensorflow/core/framework/types.proto
_PRODUCER = 561  # a GraphDef producer version TF 2.5 reads (its own is 716; min_consumer 0)


def _standin_classes() -> dict[str, list[str]]:
    genre = [f"genre{g:02d}---style{g:02d}_{s}" for g in range(20) for s in range(20)]
    return {
        "effnet": genre,
        "genre": genre,
        "mood": [f"mood{i:02d}" for i in range(56)],
        "instrument": [f"instrument{i:02d}" for i in range(40)],
        # the orders of the real models' JSON files
        "danceability": ["danceable", "not_danceable"],
        "tonality": ["atonal", "tonal"],
        "voice": ["instrumental", "voice"],
    }


STANDIN_CLASSES: dict[str, list[str]] = _standin_classes()


# --------------------------------------------------------------------------- protobuf messages

_CLASSES: dict | None = None


def graph_def_classes() -> dict:
    """``{"GraphDef": cls, "NodeDef": cls, "AttrValue": cls, "TensorProto": cls, ...}``.

    Message classes built at run time in a private descriptor pool from TensorFlow's
    field numbers (only the fields used here), so TensorFlow's parser reads what they
    write.  ``NodeDef.attr`` is a repeated ``AttrEntry`` rather than a map: the same wire
    format, with entries in the order written, so every protobuf version (3.19 and 7.x
    checked) writes the same bytes.
    """
    global _CLASSES
    if _CLASSES is None:
        from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

        F = descriptor_pb2.FieldDescriptorProto
        fdp = descriptor_pb2.FileDescriptorProto(name="sat_mir_tiny_tf_graph.proto", package="tensorflow",
                                                 syntax="proto3")

        def msg(parent, name, fields: str, nested=()):
            # fields: "name number type [repeated] [packed]; ...", type a scalar or a message's full name
            m = parent.add(name=name)
            for entry in fields.split(";"):
                fname, number, ftype, *flags = entry.split()
                label = F.LABEL_REPEATED if "repeated" in flags else F.LABEL_OPTIONAL
                if ftype.startswith("."):
                    f = m.field.add(name=fname, number=int(number), type=F.TYPE_MESSAGE, label=label,
                                    type_name=ftype)
                else:
                    f = m.field.add(name=fname, number=int(number), type=getattr(F, f"TYPE_{ftype.upper()}"),
                                    label=label)
                if "packed" in flags:
                    f.options.packed = True
            for build in nested:
                build(m.nested_type)
            return m

        msg(fdp.message_type, "TensorShapeProto",
            "dim 2 .tensorflow.TensorShapeProto.Dim repeated; unknown_rank 3 bool",
            nested=[lambda nt: msg(nt, "Dim", "size 1 int64; name 2 string")])
        # TensorProto.dtype is the enum DataType: on the wire a varint, like int32
        msg(fdp.message_type, "TensorProto", "dtype 1 int32; tensor_shape 2 .tensorflow.TensorShapeProto; "
            "version_number 3 int32; tensor_content 4 bytes; float_val 5 float repeated packed; "
            "int_val 7 int32 repeated packed; int64_val 10 int64 repeated packed")
        msg(fdp.message_type, "AttrValue", "list 1 .tensorflow.AttrValue.ListValue; s 2 bytes; i 3 int64; f 4 float; "
            "b 5 bool; type 6 int32; shape 7 .tensorflow.TensorShapeProto; tensor 8 .tensorflow.TensorProto",
            nested=[lambda nt: msg(nt, "ListValue", "s 2 bytes repeated; i 3 int64 repeated packed; "
                                   "type 6 int32 repeated packed; shape 7 .tensorflow.TensorShapeProto repeated")])

        def attr_entry(nt):
            # TensorFlow's map<string, AttrValue>, declared as the repeated entry message it is
            # on the wire: entries then keep the order written, whatever protobuf's map order
            msg(nt, "AttrEntry", "key 1 string; value 2 .tensorflow.AttrValue")

        msg(fdp.message_type, "NodeDef", "name 1 string; op 2 string; input 3 string repeated; device 4 string; "
            "attr 5 .tensorflow.NodeDef.AttrEntry repeated", nested=[attr_entry])
        msg(fdp.message_type, "VersionDef", "producer 1 int32; min_consumer 2 int32")
        msg(fdp.message_type, "GraphDef", "node 1 .tensorflow.NodeDef repeated; versions 4 .tensorflow.VersionDef")
        pool = descriptor_pool.DescriptorPool()  # private: never clashes with a real TensorFlow
        pool.Add(fdp)
        fd = pool.FindFileByName(fdp.name)
        # GetMessageClass since protobuf 4.21; GetPrototype before (gone in 5.x)
        get = getattr(message_factory, "GetMessageClass", None) or message_factory.MessageFactory(pool).GetPrototype
        _CLASSES = {name: get(desc) for name, desc in fd.message_types_by_name.items()}
    return _CLASSES


class _Graph:
    """A tiny TF1-style graph builder: each method adds one node and returns its name."""

    def __init__(self):
        self.pb = graph_def_classes()
        self.graph = self.pb["GraphDef"]()
        self.graph.versions.producer = _PRODUCER

    def node(self, name: str, op: str, inputs: Sequence[str] = (), **attrs) -> str:
        n = self.graph.node.add(name=name, op=op)
        n.input.extend(inputs)
        for key, value in sorted(attrs.items()):
            a = n.attr.add(key=key).value
            if key in ("T", "dtype", "Tidx", "Tshape", "SrcT", "DstT") and isinstance(value, int):
                a.type = value
            elif isinstance(value, bool):
                a.b = value
            elif isinstance(value, int):
                a.i = value
            elif isinstance(value, list) and key == "T":  # IdentityN: list(type)
                a.list.type.extend(value)
            elif key == "shape":
                for size in value:
                    a.shape.dim.add(size=size)
            elif key == "value":
                a.tensor.CopyFrom(value)
            else:
                raise ValueError(f"attr {key}={value!r} not supported")
        return name

    def const(self, name: str, values: Sequence[float] | float, dtype: int, shape: Sequence[int] = ()) -> str:
        t = self.pb["TensorProto"](dtype=dtype)
        for size in shape:
            t.tensor_shape.dim.add(size=size)
        vals = list(values) if isinstance(values, Sequence) else [values]
        {_DT_FLOAT: t.float_val, _DT_INT32: t.int_val, _DT_INT64: t.int64_val}[dtype].extend(vals)
        return self.node(name, "Const", dtype=dtype, value=t)

    def weights(self, scope: str, rows: int, cols: int, *, seed: int, gain: float) -> str:
        """A ``[rows, cols]`` float32 matrix computed in the graph: ``gain/sqrt(rows) * sin(2π h(i) / p)``.

        ``h(i) = i (i a + b) mod p`` over the flat index ``i`` scatters neighbouring weights
        like a hash.  Integer arithmetic keeps it exact and the sine's argument in [0, 2π),
        so every machine computes the same float32 weights (to a unit in the last place).
        """
        p = 1_000_003  # prime; i (i a + b) stays far below 2**63 for every matrix here
        a = (618_034 + 7_919 * seed) % p  # a / p near the golden ratio's fraction
        b = (104_729 * seed + 17) % p
        i = self.node(f"{scope}/range", "Range", [self.const(f"{scope}/start", 0, _DT_INT64),
                                                   self.const(f"{scope}/limit", rows * cols, _DT_INT64),
                                                   self.const(f"{scope}/delta", 1, _DT_INT64)], Tidx=_DT_INT64)
        h = self.node(f"{scope}/ia", "Mul", [i, self.const(f"{scope}/a", a, _DT_INT64)], T=_DT_INT64)
        h = self.node(f"{scope}/iab", "AddV2", [h, self.const(f"{scope}/b", b, _DT_INT64)], T=_DT_INT64)
        h = self.node(f"{scope}/hash", "Mul", [h, i], T=_DT_INT64)
        h = self.node(f"{scope}/mod", "FloorMod", [h, self.const(f"{scope}/p", p, _DT_INT64)], T=_DT_INT64)
        x = self.node(f"{scope}/cast", "Cast", [h], SrcT=_DT_INT64, DstT=_DT_FLOAT)
        x = self.node(f"{scope}/phase", "Mul", [x, self.const(f"{scope}/w", 2 * math.pi / p, _DT_FLOAT)], T=_DT_FLOAT)
        x = self.node(f"{scope}/sin", "Sin", [x], T=_DT_FLOAT)
        x = self.node(f"{scope}/scale", "Mul", [x, self.const(f"{scope}/gain", gain / math.sqrt(rows), _DT_FLOAT)],
                      T=_DT_FLOAT)
        return self.node(f"{scope}/kernel", "Reshape", [x, self.const(f"{scope}/shape", [rows, cols], _DT_INT32, [2])],
                         T=_DT_FLOAT, Tshape=_DT_INT32)

    def dense(self, scope: str, x: str, rows: int, cols: int, *, seed: int, gain: float, bias: float) -> str:
        y = self.node(f"{scope}/MatMul", "MatMul", [x, self.weights(scope, rows, cols, seed=seed, gain=gain)],
                      T=_DT_FLOAT)
        return self.node(f"{scope}/BiasAdd", "AddV2", [y, self.const(f"{scope}/bias", bias, _DT_FLOAT)], T=_DT_FLOAT)

    def serialize(self) -> bytes:
        return self.graph.SerializeToString(deterministic=True)


def _effnet_graph(seed: int) -> bytes:
    g = _Graph()
    x = g.node("serving_default_melspectrogram", "Placeholder", dtype=_DT_FLOAT, shape=[-1, 128, 96])
    time_axis = g.const("model/time_axis", [1], _DT_INT32, [1])
    mean = g.node("model/mean", "Mean", [x, time_axis], T=_DT_FLOAT, Tidx=_DT_INT32)
    peak = g.node("model/max", "Max", [x, time_axis], T=_DT_FLOAT, Tidx=_DT_INT32)
    feat = g.node("model/concat", "ConcatV2", [mean, peak, g.const("model/concat_axis", 1, _DT_INT32)],
                  N=2, T=_DT_FLOAT, Tidx=_DT_INT32)
    # layer normalisation: the spectral shape, not the overall level, drives the embeddings,
    # and the dense layer's outputs land in tanh's useful range for any input level
    level = g.node("model/norm/mean", "Mean", [feat, time_axis], T=_DT_FLOAT, Tidx=_DT_INT32, keep_dims=True)
    feat = g.node("model/norm/centred", "Sub", [feat, level], T=_DT_FLOAT)
    var = g.node("model/norm/var", "Mean", [g.node("model/norm/square", "Square", [feat], T=_DT_FLOAT), time_axis],
                 T=_DT_FLOAT, Tidx=_DT_INT32, keep_dims=True)
    var = g.node("model/norm/var_eps", "AddV2", [var, g.const("model/norm/eps", 1e-6, _DT_FLOAT)], T=_DT_FLOAT)
    feat = g.node("model/norm/scaled", "Mul", [feat, g.node("model/norm/rsqrt", "Rsqrt", [var], T=_DT_FLOAT)],
                  T=_DT_FLOAT)
    emb = g.node("model/embeddings", "Tanh", [g.dense("model/dense", feat, 192, 1280, seed=seed, gain=2.0, bias=0.0)],
                 T=_DT_FLOAT)
    act = g.node("model/activations", "Sigmoid",
                 [g.dense("model/classifier", emb, 1280, 400, seed=seed + 1, gain=3.0, bias=-2.0)], T=_DT_FLOAT)
    g.node("PartitionedCall", "IdentityN", [act, emb], T=[_DT_FLOAT, _DT_FLOAT])
    return g.serialize()


def _head_graph(key: str, n_classes: int, seed: int) -> bytes:
    g = _Graph()
    input_name = "serving_default_model_Placeholder" if key == "genre" else "model/Placeholder"
    x = g.node(input_name, "Placeholder", dtype=_DT_FLOAT, shape=[-1, 1280])
    if key in _SOFTMAX:
        logits = g.dense("model/dense", x, 1280, n_classes, seed=seed, gain=3.0, bias=0.0)
        g.node("model/Softmax", "Softmax", [logits], T=_DT_FLOAT)
    else:
        logits = g.dense("model/dense", x, 1280, n_classes, seed=seed, gain=4.0, bias=-2.0)
        out = g.node("model/Sigmoid", "Sigmoid", [logits], T=_DT_FLOAT)
        if key == "genre":
            g.node("PartitionedCall", "IdentityN", [out], T=[_DT_FLOAT])
    return g.serialize()


def _metadata(key: str, classes: list[str]) -> dict:
    """The fields of the real models' JSON files that sat-mir reads, in their layout."""
    stem = _FILES[key]
    if key == "effnet":
        inputs = [{"name": "serving_default_melspectrogram", "type": "float", "shape": ["batch_size", 128, 96]}]
        outputs = [{"name": "PartitionedCall:0", "type": "float", "shape": ["batch_size", len(classes)],
                    "op": "Sigmoid", "output_purpose": "predictions"},
                   {"name": "PartitionedCall:1", "type": "float", "shape": ["batch_size", 1280],
                    "op": "Identity", "output_purpose": "embeddings"}]
    else:
        softmax = key in _SOFTMAX
        inputs = [{"name": "serving_default_model_Placeholder" if key == "genre" else "model/Placeholder",
                   "type": "float", "shape": ["batch_size", 1280]}]
        outputs = [{"name": "PartitionedCall:0" if key == "genre" else ("model/Softmax" if softmax else "model/Sigmoid"),
                    "type": "float", "shape": ["batch_size", len(classes)],
                    "op": "Softmax" if softmax else "Sigmoid", "output_purpose": "predictions"}]
    return {
        "name": f"{stem} (sat-mir tiny stand-in)",
        "type": "stand-in for tests",
        "link": f"https://essentia.upf.edu/models/ (stand-in for {stem}.pb)",
        "version": "1",
        "description": "tiny frozen graph with the real node names; synthetic labels; NOT a trained model",
        "author": "tools/make_tiny_essentia.py",
        "framework": "tensorflow",
        "framework_version": "2.5.0",
        "classes": classes,
        "model_types": ["frozen_model"],
        "schema": {"inputs": inputs, "outputs": outputs},
        "inference": {"sample_rate": 16000, "algorithm": "TensorflowPredictEffnetDiscogs" if key == "effnet"
                      else "TensorflowPredict2D"},
    }


def make_tiny_essentia(models_dir: Path, *, seed: int = 0,
                       classes: Mapping[str, Sequence[str]] | None = None) -> Path:
    """Write the seven stand-ins into ``<models_dir>/essentia`` and return that folder.

    Parameters
    ----------
    models_dir : the models folder (created if missing).
    seed : int >= 0; changes every weight, so two seeds give two different models.
    classes : model key (``effnet``, ``genre``, ``mood``, ``instrument``, ``danceability``,
        ``tonality``, ``voice``) → labels written to that model's JSON in place of :data:`STANDIN_CLASSES`.
        The graph is unchanged, so the labels must keep the class count.

    Raises
    ------
    ValueError
        An unknown model key, or a label list of the wrong length.
    """
    from sat_mir.fsutil import atomic_write_bytes, atomic_write_text

    labels = {k: list(v) for k, v in STANDIN_CLASSES.items()}
    for key, names in (classes or {}).items():
        if key not in labels:
            raise ValueError(f"unknown model key {key!r}; known: {sorted(labels)}")
        if len(names) != len(labels[key]):
            raise ValueError(f"{key}: the stand-in graph has {len(labels[key])} classes, got {len(names)} labels")
        labels[key] = [str(n) for n in names]
    folder = Path(models_dir) / "essentia"
    folder.mkdir(parents=True, exist_ok=True)
    for i, (key, stem) in enumerate(_FILES.items()):
        graph = (_effnet_graph(seed * 16) if key == "effnet"
                 else _head_graph(key, len(labels[key]), seed * 16 + 2 * i + 2))
        atomic_write_bytes(folder / f"{stem}.pb", graph)
        atomic_write_text(folder / f"{stem}.json", json.dumps(_metadata(key, labels[key]), indent=2) + "\n")
    return folder


def main() -> None:
    from stand_in_cli import stand_in_main  # tools/ is on the path when run as a script

    def report(folder: Path) -> None:
        for f in sorted(folder.iterdir()):
            print(f"{f} ({f.stat().st_size} bytes)")

    stand_in_main(make_tiny_essentia, __doc__, report)


if __name__ == "__main__":
    main()
