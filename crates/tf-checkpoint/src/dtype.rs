//! TensorFlow `DataType` values as they appear in `BundleEntryProto.dtype`.

use std::fmt;

/// A tensor's element type. `Other` keeps any value this reader cannot decode (quantized,
/// float8, resource, variant, ...) so it can still be listed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DType {
    /// `DT_FLOAT`: 32-bit IEEE float.
    Float32,
    /// `DT_DOUBLE`: 64-bit IEEE float.
    Float64,
    /// `DT_HALF`: 16-bit IEEE float.
    Float16,
    /// `DT_BFLOAT16`: bfloat16 (the top half of an f32).
    BFloat16,
    /// `DT_INT8`.
    Int8,
    /// `DT_INT16`.
    Int16,
    /// `DT_INT32`.
    Int32,
    /// `DT_INT64`.
    Int64,
    /// `DT_UINT8`.
    UInt8,
    /// `DT_UINT16`.
    UInt16,
    /// `DT_UINT32`.
    UInt32,
    /// `DT_UINT64`.
    UInt64,
    /// `DT_BOOL`: one byte per value.
    Bool,
    /// `DT_STRING`: variable-length byte strings.
    String,
    /// `DT_COMPLEX64`: two f32 per value.
    Complex64,
    /// `DT_COMPLEX128`: two f64 per value.
    Complex128,
    /// Any other `DataType` enum value: listed, but reading it is an error.
    Other(i32),
}

impl DType {
    /// Map the protobuf enum value.
    pub fn from_proto(value: i32) -> DType {
        match value {
            1 => DType::Float32,
            2 => DType::Float64,
            3 => DType::Int32,
            4 => DType::UInt8,
            5 => DType::Int16,
            6 => DType::Int8,
            7 => DType::String,
            8 => DType::Complex64,
            9 => DType::Int64,
            10 => DType::Bool,
            14 => DType::BFloat16,
            17 => DType::UInt16,
            18 => DType::Complex128,
            19 => DType::Float16,
            22 => DType::UInt32,
            23 => DType::UInt64,
            other => DType::Other(other),
        }
    }

    /// The protobuf enum value.
    pub fn to_proto(self) -> i32 {
        match self {
            DType::Float32 => 1,
            DType::Float64 => 2,
            DType::Int32 => 3,
            DType::UInt8 => 4,
            DType::Int16 => 5,
            DType::Int8 => 6,
            DType::String => 7,
            DType::Complex64 => 8,
            DType::Int64 => 9,
            DType::Bool => 10,
            DType::BFloat16 => 14,
            DType::UInt16 => 17,
            DType::Complex128 => 18,
            DType::Float16 => 19,
            DType::UInt32 => 22,
            DType::UInt64 => 23,
            DType::Other(v) => v,
        }
    }

    /// TensorFlow's spelling (`tf.DType.name`): "float32", "bfloat16", "string", ...
    /// Unknown values print as `dtype_<n>`.
    pub fn tf_name(&self) -> String {
        let name = match self {
            DType::Float32 => "float32",
            DType::Float64 => "float64",
            DType::Float16 => "float16",
            DType::BFloat16 => "bfloat16",
            DType::Int8 => "int8",
            DType::Int16 => "int16",
            DType::Int32 => "int32",
            DType::Int64 => "int64",
            DType::UInt8 => "uint8",
            DType::UInt16 => "uint16",
            DType::UInt32 => "uint32",
            DType::UInt64 => "uint64",
            DType::Bool => "bool",
            DType::String => "string",
            DType::Complex64 => "complex64",
            DType::Complex128 => "complex128",
            DType::Other(v) => match other_name(*v) {
                Some(name) => name,
                None => return format!("dtype_{v}"),
            },
        };
        name.to_string()
    }

    /// Bytes per element on disk for the types this reader decodes; `None` for strings and
    /// for `Other`.
    pub fn element_size(&self) -> Option<usize> {
        Some(match self {
            DType::Int8 | DType::UInt8 | DType::Bool => 1,
            DType::Float16 | DType::BFloat16 | DType::Int16 | DType::UInt16 => 2,
            DType::Float32 | DType::Int32 | DType::UInt32 => 4,
            DType::Float64 | DType::Int64 | DType::UInt64 | DType::Complex64 => 8,
            DType::Complex128 => 16,
            DType::String | DType::Other(_) => return None,
        })
    }

    /// Width of the units a big-endian bundle must byte-swap (complex: per component).
    pub(crate) fn swap_width(&self) -> usize {
        match self {
            DType::Complex64 => 4,
            DType::Complex128 => 8,
            other => other.element_size().unwrap_or(1),
        }
    }

    /// Floating-point types [`read_f32`](super::Checkpoint::read_f32) converts.
    pub fn is_float(&self) -> bool {
        matches!(
            self,
            DType::Float32 | DType::Float64 | DType::Float16 | DType::BFloat16
        )
    }
}

/// TF names of the `DataType` values this reader lists but does not decode.
fn other_name(value: i32) -> Option<&'static str> {
    Some(match value {
        0 => "invalid",
        11 => "qint8",
        12 => "quint8",
        13 => "qint32",
        15 => "qint16",
        16 => "quint16",
        20 => "resource",
        21 => "variant",
        24 => "float8_e5m2",
        25 => "float8_e4m3fn",
        26 => "float8_e4m3fnuz",
        27 => "float8_e4m3b11fnuz",
        28 => "float8_e5m2fnuz",
        29 => "int4",
        30 => "uint4",
        _ => return None,
    })
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.tf_name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proto_values_round_trip() {
        for v in -2..40 {
            assert_eq!(DType::from_proto(v).to_proto(), v);
        }
    }

    #[test]
    fn names_and_sizes() {
        assert_eq!(DType::from_proto(1).tf_name(), "float32");
        assert_eq!(DType::from_proto(19).tf_name(), "float16");
        assert_eq!(DType::from_proto(14).tf_name(), "bfloat16");
        assert_eq!(DType::from_proto(24).tf_name(), "float8_e5m2");
        assert_eq!(DType::from_proto(20).tf_name(), "resource");
        assert_eq!(DType::from_proto(21).tf_name(), "variant");
        assert_eq!(DType::from_proto(99).tf_name(), "dtype_99");
        assert_eq!(DType::Complex128.element_size(), Some(16));
        assert_eq!(DType::String.element_size(), None);
        assert_eq!(DType::Other(24).element_size(), None);
        assert_eq!(DType::Complex64.swap_width(), 4);
        assert_eq!(DType::Bool.swap_width(), 1);
    }
}
