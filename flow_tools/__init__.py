"""Video -> optical flow -> TFRecords. Never imports two_stream_tf.

Apps are verbs run with `python -m flow_tools.<app>`, each calling one library function;
libraries are nouns, in one folder per stage:

  datasets/    UCF-101, HMDB-51 and folder-per-class loaders (the package itself: the
               dataset index), tfds_videos (TensorFlow Datasets), synthetic (seeded videos)
  extraction/  job (dataset -> runner), local_runner, beam_runner, output_directory (what
               is finished, each video's files, the manifest), encoding (one video's
               work), video (decoding), flow, quantization, sources (fingerprints)
  records/     THE record schema (the package itself), tfrecord_format (written without
               TensorFlow), record_parsing (TensorFlow's side)
  rawframes/   layouts (other tools' frame folders), rawframes_import, rawframes_export,
               annotation_lists
  pictures/    flow_colors (Middlebury coding), visualization (contact sheets, flow
               videos), figures (matplotlib rendering)
  common/      storage (local and gs:// files), locks, interrupts (Ctrl-C), process_memory

  app               library
  extract           extraction.job.extract_dataset
  import_rawframes  rawframes.rawframes_import.import_frames
  export_rawframes  rawframes.rawframes_export.export_records
  index_records     records.index_directory
  visualize         pictures.visualization.write
  synthesize        datasets.synthetic.generate
"""
