//! Declarative TF → HuggingFace name tables per model kind, with a reason for every skipped variable.
