"""File formats: minimovinet's h5 files, TensorFlow checkpoints and SavedModels, TFLite
flatbuffers.

    h5.py                   the minimovinet h5 format: header, float models, `file_kind`
    h5_int8.py              the int8 h5 format: an `int8.program.Int8Program` in an h5 file
    int8_tflite.py          `load_tflite`: an int8 .tflite file as an `Int8Movinet`
    float_tflite.py         `load_float_tflite`: a float32 / float16 / dynamic-range .tflite file
                            as a float32 `Movinet`; `tflite_form`: which form a file is
    tflite_writer.py        `write_tflite`: an `int8.program.Int8Program` as a .tflite file
    flatbuffer.py           FlatBuffers encoding without flatbuffers (the writer's tables)
    official_checkpoint.py  official Model Garden checkpoint names -> minimovinet parameters
    tf_checkpoint.py        TensorFlow checkpoint reader without TensorFlow
    saved_model.py          TF Hub / Kaggle SavedModels without TensorFlow: names, config
    protowire.py            the protobuf wire format (no protobuf package)
    crc32c.py               CRC32C (a Numba loop), the checksum of checkpoints
    tflite.py               TFLite flatbuffer reader without TFLite
    tflite_import/          a TFLite graph -> `int8.program.Int8Program` (int8), or float32
                            parameters (float forms)

May import: the shared modules and the public names of `float32` and `int8`.  Never imports
`apps`.
"""
