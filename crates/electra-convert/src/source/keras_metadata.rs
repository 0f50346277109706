//! Just enough of tf_keras' `keras_metadata.pb` (`SavedMetadata`) to read a SavedModel
//! encoder's Keras config: `SavedMetadata { repeated SavedObject nodes = 1 }`,
//! `SavedObject { int32 node_id = 2; string node_path = 3; string identifier = 4;
//! string metadata = 5 (JSON); VersionDef version = 6 }`. Other fields are skipped by wire type.
//! The bytes are untrusted: every length is checked against what is left, nesting is one level.

use serde_json::Value;

/// One `SavedObject` of the metadata.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SavedObject {
    pub node_id: i64,
    pub node_path: String,
    pub identifier: String,
    /// The object's Keras metadata, a JSON text.
    pub metadata: String,
}

/// Why `keras_metadata.pb` could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} at byte {offset}")]
pub struct MetadataError {
    pub what: &'static str,
    pub offset: usize,
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    base: usize,
}

impl<'a> Reader<'a> {
    fn err(&self, what: &'static str) -> MetadataError {
        MetadataError {
            what,
            offset: self.base + self.pos,
        }
    }

    fn varint(&mut self) -> Result<u64, MetadataError> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let Some(&b) = self.buf.get(self.pos) else {
                return Err(self.err("truncated varint"));
            };
            self.pos += 1;
            value |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return Ok(value);
            }
        }
        Err(self.err("varint longer than 10 bytes"))
    }

    fn bytes(&mut self) -> Result<(&'a [u8], usize), MetadataError> {
        let len = self.varint()?;
        let left = (self.buf.len() - self.pos) as u64;
        if len > left {
            return Err(self.err("length past the end"));
        }
        let start = self.pos;
        self.pos += len as usize;
        Ok((&self.buf[start..self.pos], self.base + start))
    }

    /// Skip a field of `wire` type; groups are refused.
    fn skip(&mut self, wire: u64) -> Result<(), MetadataError> {
        match wire {
            0 => self.varint().map(drop),
            1 | 5 => {
                let n = if wire == 1 { 8 } else { 4 };
                if self.buf.len() - self.pos < n {
                    return Err(self.err("fixed-width field past the end"));
                }
                self.pos += n;
                Ok(())
            }
            2 => self.bytes().map(drop),
            _ => Err(self.err("unsupported wire type")),
        }
    }

    fn done(&self) -> bool {
        self.pos >= self.buf.len()
    }
}

fn text(bytes: &[u8], offset: usize) -> Result<String, MetadataError> {
    String::from_utf8(bytes.to_vec()).map_err(|_| MetadataError {
        what: "string field is not UTF-8",
        offset,
    })
}

/// Decode a `SavedMetadata` message.
pub fn decode(buf: &[u8]) -> Result<Vec<SavedObject>, MetadataError> {
    let mut r = Reader {
        buf,
        pos: 0,
        base: 0,
    };
    let mut nodes = Vec::new();
    while !r.done() {
        let tag = r.varint()?;
        if tag >> 3 == 1 && tag & 7 == 2 {
            let (body, base) = r.bytes()?;
            nodes.push(decode_object(body, base)?);
        } else {
            r.skip(tag & 7)?;
        }
    }
    Ok(nodes)
}

fn decode_object(buf: &[u8], base: usize) -> Result<SavedObject, MetadataError> {
    let mut r = Reader { buf, pos: 0, base };
    let mut o = SavedObject::default();
    while !r.done() {
        let tag = r.varint()?;
        match (tag >> 3, tag & 7) {
            (2, 0) => o.node_id = r.varint()? as i64,
            (3, 2) => {
                let (b, at) = r.bytes()?;
                o.node_path = text(b, at)?;
            }
            (4, 2) => {
                let (b, at) = r.bytes()?;
                o.identifier = text(b, at)?;
            }
            (5, 2) => {
                let (b, at) = r.bytes()?;
                o.metadata = text(b, at)?;
            }
            (_, wire) => r.skip(wire)?,
        }
    }
    Ok(o)
}

/// The Keras config of a SavedModel's encoder layer (Model Garden `BertEncoder`).
#[derive(Clone, Debug, PartialEq)]
pub struct EncoderMetadata {
    /// Where it is in the object tree (`root.layer_with_weights-0`).
    pub node_path: String,
    /// Its registered Keras class (`Text>BertEncoder`).
    pub class_name: String,
    /// `inner_activation` as serialized (`Text>gelu` is Model Garden's tanh GELU).
    pub inner_activation: Option<String>,
    pub num_attention_heads: Option<u64>,
    pub hidden_size: Option<u64>,
    pub num_layers: Option<u64>,
    pub inner_dim: Option<u64>,
    pub vocab_size: Option<u64>,
    pub embedding_width: Option<u64>,
    /// `norm_first: true` (pre-LN) has no transformers ELECTRA equivalent.
    pub norm_first: bool,
}

/// Keras class names of encoders this tool reads: Model Garden's BERT-style encoder, which is
/// what ELECTRA's discriminator is.
pub fn is_bert_encoder(class_name: &str) -> bool {
    matches!(
        class_name.rsplit('>').next(),
        Some("BertEncoder" | "BertEncoderV2")
    )
}

/// The first weighted layer of the root model (`root.layer_with_weights-0`), if its metadata is
/// a Keras layer config.
pub fn encoder(nodes: &[SavedObject]) -> Option<EncoderMetadata> {
    let node = nodes
        .iter()
        .find(|n| n.node_path == "root.layer_with_weights-0")?;
    let json: Value = serde_json::from_str(&node.metadata).ok()?;
    let class_name = json.get("class_name")?.as_str()?.to_owned();
    let config = json.get("config");
    let num = |k: &str| config.and_then(|c| c.get(k)).and_then(Value::as_u64);
    Some(EncoderMetadata {
        node_path: node.node_path.clone(),
        class_name,
        inner_activation: config
            .and_then(|c| c.get("inner_activation"))
            .and_then(Value::as_str)
            .map(str::to_owned),
        num_attention_heads: num("num_attention_heads"),
        hidden_size: num("hidden_size"),
        num_layers: num("num_layers"),
        inner_dim: num("inner_dim"),
        vocab_size: num("vocab_size"),
        embedding_width: num("embedding_width"),
        norm_first: config
            .and_then(|c| c.get("norm_first"))
            .and_then(Value::as_bool)
            .unwrap_or(false),
    })
}

/// The transformers `hidden_act` for a Keras `inner_activation`, if there is one.
pub fn hidden_act(inner_activation: &str) -> Option<&'static str> {
    match inner_activation {
        // official.modeling.activations.gelu: tf_keras gelu(approximate=True), the tanh form.
        "Text>gelu" | "gelu" => Some("gelu_new"),
        "relu" => Some("relu"),
        "Text>relu6" | "relu6" => Some("relu6"),
        "swish" | "silu" | "Text>swish" | "Text>simple_swish" => Some("silu"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(out: &mut Vec<u8>, num: u8, bytes: &[u8]) {
        out.push(num << 3 | 2);
        out.push(bytes.len() as u8);
        out.extend_from_slice(bytes);
    }

    fn object(path: &str, meta: &str) -> Vec<u8> {
        let mut o = vec![2 << 3, 4];
        field(&mut o, 3, path.as_bytes());
        field(&mut o, 4, b"_tf_keras_layer");
        field(&mut o, 5, meta.as_bytes());
        field(&mut o, 6, &[8, 2, 16, 1]);
        o
    }

    #[test]
    fn decodes_objects_and_the_encoder_config() {
        let meta = r#"{"class_name": "Text>BertEncoder", "config": {"num_attention_heads": 2, "inner_activation": "Text>gelu"}}"#;
        let mut buf = Vec::new();
        field(&mut buf, 1, &object("root", "{}"));
        let enc = object("root.layer_with_weights-0", meta);
        buf.push(1 << 3 | 2);
        buf.push(enc.len() as u8 | 0x80);
        buf.push((enc.len() >> 7) as u8);
        buf.extend_from_slice(&enc);
        let nodes = decode(&buf).unwrap();
        assert_eq!(nodes.len(), 2);
        assert_eq!(nodes[1].node_id, 4);
        assert_eq!(nodes[1].identifier, "_tf_keras_layer");
        let e = encoder(&nodes).unwrap();
        assert!(is_bert_encoder(&e.class_name));
        assert_eq!(e.num_attention_heads, Some(2));
        assert_eq!(
            hidden_act(e.inner_activation.as_deref().unwrap()),
            Some("gelu_new")
        );
    }

    #[test]
    fn refuses_lengths_past_the_end_and_bad_wire_types() {
        assert!(decode(&[1 << 3 | 2, 5, 1]).is_err());
        assert!(decode(&[1 << 3 | 3]).is_err());
        assert!(decode(&[0x80]).is_err());
        assert!(decode(&[0xff; 11]).is_err());
        assert_eq!(decode(&[]).unwrap(), Vec::new());
    }

    #[test]
    fn reads_the_fixture() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../fixtures/forms/mg_savedmodel/keras_metadata.pb"
        );
        let nodes = decode(&std::fs::read(path).unwrap()).unwrap();
        assert_eq!(nodes.len(), 47);
        let e = encoder(&nodes).unwrap();
        assert_eq!(e.class_name, "Text>BertEncoder");
        assert_eq!(e.inner_activation.as_deref(), Some("Text>gelu"));
        assert_eq!(
            (
                e.hidden_size,
                e.num_layers,
                e.num_attention_heads,
                e.inner_dim
            ),
            (Some(32), Some(2), Some(2), Some(64))
        );
        assert_eq!(e.embedding_width, Some(16));
        assert!(!e.norm_first);
    }
}
