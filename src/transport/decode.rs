//! Decoding an upload's body (`Content-Encoding: gzip` or `zstd`) chunk by chunk, strictly.
//!
//! Why not actix's `Decompress`: it hands out what it decoded and ends cleanly when the body
//! ends, whether or not the compressed stream did, so a body cut mid-frame loaded as a shorter
//! (even empty) file and replaced a dataset with it. Here the stream must end exactly at the
//! end of a zstd frame or gzip member, or it is refused.
//!
//! Invariants:
//! - [`BodyDecoder::finish`] succeeds only if the body held at least one whole zstd frame or
//!   gzip member, ended exactly where one ends, and every gzip member's CRC-32 and size
//!   matched. Concatenated frames or members are legal (what `cat a.gz b.gz` makes); bytes
//!   after the last one, a stream cut short or a corrupt one are an `invalid_upload` error.
//! - Memory is bounded whatever the body: the output goes to the sink as it is decoded, in
//!   pieces of at most [`OUT_PIECE`] bytes (zstd) or what one step of flate2's writer leaves
//!   (its 32 KiB buffer), so a decompression bomb is stopped by the sink's byte count, never
//!   held; a zstd frame may ask for a window of at most 2^[`ZSTD_WINDOW_LOG_MAX`] bytes.
//! - Only identity, gzip (`x-gzip`) and zstd are accepted: `deflate` (zlib or raw, clients
//!   disagree) and `br` are refused (`invalid_request`), as is more than one coding.

use std::io::Write;

use actix_web::http::header::{self, HeaderMap};
use zstd::stream::raw::{DParameter, InBuffer, Operation, OutBuffer};

use crate::error::GatewayError;

/// The largest piece of zstd output handed to the sink at once.
pub const OUT_PIECE: usize = 128 * 1024;

/// zstd's own default limit: a frame needing a larger window (`zstd --long=31`) is refused.
pub const ZSTD_WINDOW_LOG_MAX: u32 = 27;

/// How an upload's body is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Identity,
    Gzip,
    Zstd,
}

impl Encoding {
    /// From the request's `Content-Encoding` (one coding at most).
    pub fn from_headers(headers: &HeaderMap) -> Result<Self, GatewayError> {
        let mut values = headers.get_all(header::CONTENT_ENCODING);
        let first = values.next();
        if values.next().is_some() {
            return Err(GatewayError::InvalidRequest(
                "send one Content-Encoding: gzip, zstd or none".into(),
            ));
        }
        let coding = first.map(|v| v.to_str().unwrap_or("?").trim().to_ascii_lowercase());
        match coding.as_deref() {
            None | Some("identity") => Ok(Self::Identity),
            Some("gzip" | "x-gzip") => Ok(Self::Gzip),
            Some("zstd") => Ok(Self::Zstd),
            Some(other) => Err(GatewayError::InvalidRequest(format!(
                "Content-Encoding `{}` is not accepted for uploads: send gzip, zstd or none",
                other.chars().take(64).collect::<String>()
            ))),
        }
    }
}

/// Where decoded bytes go, in order; an error stops the decoding.
pub type Sink<'a> = dyn FnMut(&[u8]) -> Result<(), GatewayError> + 'a;

/// A body's decoder: [`push`](Self::push) each chunk as it arrives, then
/// [`finish`](Self::finish) at the body's end.
pub struct BodyDecoder {
    state: State,
}

enum State {
    Identity,
    /// Its writer collects at most one piece of output between two drains.
    Gzip(Box<flate2::write::MultiGzDecoder<Vec<u8>>>),
    Zstd {
        raw: Box<zstd::stream::raw::Decoder<'static>>,
        out: Vec<u8>,
        /// The last step ended a frame (nothing was read yet: false).
        at_frame_end: bool,
    },
}

fn broken(coding: &str, e: std::io::Error) -> GatewayError {
    GatewayError::InvalidUpload(format!("the {coding} body cannot be decoded: {e}"))
}

impl BodyDecoder {
    pub fn new(encoding: Encoding) -> Result<Self, GatewayError> {
        let state = match encoding {
            Encoding::Identity => State::Identity,
            Encoding::Gzip => State::Gzip(Box::new(flate2::write::MultiGzDecoder::new(
                Vec::with_capacity(32 * 1024),
            ))),
            Encoding::Zstd => {
                let mut raw = zstd::stream::raw::Decoder::new().map_err(GatewayError::internal)?;
                raw.set_parameter(DParameter::WindowLogMax(ZSTD_WINDOW_LOG_MAX))
                    .map_err(GatewayError::internal)?;
                State::Zstd {
                    raw: Box::new(raw),
                    out: vec![0; OUT_PIECE],
                    at_frame_end: false,
                }
            }
        };
        Ok(Self { state })
    }

    /// Decodes the next chunk of the body, handing what it decodes to `sink`.
    pub fn push(&mut self, input: &[u8], sink: &mut Sink<'_>) -> Result<(), GatewayError> {
        match &mut self.state {
            State::Identity => sink(input),
            State::Gzip(decoder) => gzip_push(decoder, input, sink),
            State::Zstd {
                raw,
                out,
                at_frame_end,
            } => zstd_push(raw, out, input, at_frame_end, sink),
        }
    }

    /// The body has ended: hands over the rest of the output, or fails unless the body ended
    /// exactly at the end of a frame or member.
    pub fn finish(&mut self, sink: &mut Sink<'_>) -> Result<(), GatewayError> {
        match &mut self.state {
            State::Identity => Ok(()),
            State::Gzip(decoder) => {
                decoder.try_finish().map_err(|_| {
                    GatewayError::InvalidUpload(
                        "the gzip body does not end cleanly: a member is cut short or fails \
                         its CRC, or bytes follow the last one"
                            .into(),
                    )
                })?;
                drain(decoder.get_mut(), sink)
            }
            State::Zstd { at_frame_end, .. } if *at_frame_end => Ok(()),
            State::Zstd { .. } => Err(GatewayError::InvalidUpload(
                "the zstd body is incomplete: it is empty or ends inside a frame".into(),
            )),
        }
    }
}

fn drain(buf: &mut Vec<u8>, sink: &mut Sink<'_>) -> Result<(), GatewayError> {
    if !buf.is_empty() {
        sink(buf)?;
        buf.clear();
    }
    Ok(())
}

/// Each `write` consumes some input and leaves at most one 32 KiB buffer of output in the
/// writer, which is drained before the next.
fn gzip_push(
    decoder: &mut flate2::write::MultiGzDecoder<Vec<u8>>,
    mut input: &[u8],
    sink: &mut Sink<'_>,
) -> Result<(), GatewayError> {
    while !input.is_empty() {
        let n = decoder.write(input).map_err(|e| broken("gzip", e))?;
        if n == 0 {
            return Err(GatewayError::InvalidUpload(
                "the gzip body cannot be decoded".into(),
            ));
        }
        input = &input[n..];
        drain(decoder.get_mut(), sink)?;
    }
    Ok(())
}

/// Runs the zstd decoder until the chunk is consumed and the output flushed. Its return
/// value is 0 exactly when a frame has been decoded and flushed whole.
fn zstd_push(
    raw: &mut zstd::stream::raw::Decoder<'static>,
    out: &mut [u8],
    input: &[u8],
    at_frame_end: &mut bool,
    sink: &mut Sink<'_>,
) -> Result<(), GatewayError> {
    let mut input = InBuffer::around(input);
    loop {
        let before = input.pos();
        let (hint, produced) = {
            let mut output = OutBuffer::around(&mut *out);
            let hint = raw
                .run(&mut input, &mut output)
                .map_err(|e| broken("zstd", e))?;
            (hint, output.pos())
        };
        *at_frame_end = hint == 0;
        if produced > 0 {
            sink(&out[..produced])?;
        }
        let consumed = input.pos() == input.src.len();
        if consumed && produced < out.len() {
            return Ok(());
        }
        if produced == 0 && input.pos() == before {
            return Err(GatewayError::InvalidUpload(
                "the zstd body cannot be decoded".into(),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Decodes `body` pushed in pieces of `piece` bytes: the output, or the error's code.
    fn decode(encoding: Encoding, body: &[u8], piece: usize) -> Result<Vec<u8>, String> {
        let mut out = Vec::new();
        let mut sink = |d: &[u8]| {
            assert!(d.len() <= OUT_PIECE);
            out.extend_from_slice(d);
            Ok(())
        };
        let mut decoder = BodyDecoder::new(encoding).map_err(|e| e.to_string())?;
        for chunk in body.chunks(piece.max(1)) {
            decoder.push(chunk, &mut sink).map_err(|e| e.to_string())?;
        }
        decoder.finish(&mut sink).map_err(|e| e.to_string())?;
        Ok(out)
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    /// With a checksum, as the zstd CLI writes (without one, a flipped literal goes unseen).
    fn zstd(data: &[u8]) -> Vec<u8> {
        let mut c = zstd::bulk::Compressor::new(3).unwrap();
        c.set_parameter(zstd::zstd_safe::CParameter::ChecksumFlag(true))
            .unwrap();
        c.compress(data).unwrap()
    }

    /// Data that compresses: repeated words with some noise.
    fn text(seed: u64, len: usize) -> Vec<u8> {
        let mut x = seed | 1;
        (0..len)
            .map(|i| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                if x.is_multiple_of(8) {
                    (x >> 8) as u8
                } else {
                    b"id,name,score\n1,ada,9.5\n"[i % 24]
                }
            })
            .collect()
    }

    #[test]
    fn whole_streams_decode_and_concatenations_too() {
        let (a, b) = (text(1, 100_000), text(2, 3_000));
        for piece in [1, 7, 4096, usize::MAX] {
            assert_eq!(decode(Encoding::Gzip, &gzip(&a), piece).unwrap(), a);
            assert_eq!(decode(Encoding::Zstd, &zstd(&a), piece).unwrap(), a);
            let both: Vec<u8> = [a.clone(), b.clone()].concat();
            let gz = [gzip(&a), gzip(&b)].concat();
            assert_eq!(decode(Encoding::Gzip, &gz, piece).unwrap(), both);
            let zs = [zstd(&a), zstd(&b)].concat();
            assert_eq!(decode(Encoding::Zstd, &zs, piece).unwrap(), both);
            assert_eq!(decode(Encoding::Identity, &a, piece).unwrap(), a);
        }
        // Empty data compressed is a whole (small) stream.
        assert_eq!(decode(Encoding::Gzip, &gzip(b""), 1).unwrap(), b"");
        assert_eq!(decode(Encoding::Zstd, &zstd(b""), 1).unwrap(), b"");
    }

    #[test]
    fn cut_trailing_garbage_and_corrupt_streams_are_refused() {
        let data = text(3, 50_000);
        for (encoding, body) in [(Encoding::Gzip, gzip(&data)), (Encoding::Zstd, zstd(&data))] {
            let cuts = [0, 1, 5, 10, body.len() / 2, body.len() - 4, body.len() - 1];
            for cut in cuts {
                let e = decode(encoding, &body[..cut], 4096).unwrap_err();
                assert!(e.contains("body"), "{encoding:?} cut at {cut}: {e}");
            }
            for tail in [&b"\0"[..], b"garbage", &body[..10]] {
                let padded = [&body[..], tail].concat();
                assert!(
                    decode(encoding, &padded, 4096).is_err(),
                    "{encoding:?} + {tail:?}"
                );
            }
            let mut flipped = body.clone();
            let mid = flipped.len() / 2;
            flipped[mid] ^= 0x55;
            assert!(decode(encoding, &flipped, 4096).is_err(), "{encoding:?}");
        }
        // gzip's trailer: a wrong CRC-32 or size is refused.
        let mut body = gzip(&data);
        let n = body.len();
        body[n - 8] ^= 1;
        assert!(decode(Encoding::Gzip, &body, 4096).is_err());
        let mut body = gzip(&data);
        body[n - 1] ^= 1;
        assert!(decode(Encoding::Gzip, &body, 4096).is_err());
    }

    #[test]
    fn a_bomb_comes_out_in_bounded_pieces_and_stops_at_the_sink() {
        let zeros = vec![0u8; 64 << 20];
        for (encoding, body) in [
            (Encoding::Gzip, gzip(&zeros)),
            (Encoding::Zstd, zstd(&zeros)),
        ] {
            assert!(body.len() < 1 << 20);
            let mut decoder = BodyDecoder::new(encoding).unwrap();
            let mut total = 0usize;
            let mut sink = |d: &[u8]| {
                assert!(d.len() <= OUT_PIECE);
                total += d.len();
                match total > 1 << 20 {
                    true => Err(GatewayError::PayloadTooLarge(1 << 20)),
                    false => Ok(()),
                }
            };
            let e = decoder.push(&body, &mut sink).unwrap_err();
            assert_eq!(e.code(), "payload_too_large");
            assert!(total <= (1 << 20) + OUT_PIECE);
        }
    }

    #[test]
    fn only_identity_gzip_and_zstd_are_accepted() {
        let with = |values: &[&str]| {
            let mut h = HeaderMap::new();
            for v in values {
                h.append(
                    header::CONTENT_ENCODING,
                    header::HeaderValue::from_str(v).unwrap(),
                );
            }
            Encoding::from_headers(&h).map_err(|e| e.code())
        };
        assert_eq!(with(&[]), Ok(Encoding::Identity));
        assert_eq!(with(&["identity"]), Ok(Encoding::Identity));
        assert_eq!(with(&[" GZIP "]), Ok(Encoding::Gzip));
        assert_eq!(with(&["x-gzip"]), Ok(Encoding::Gzip));
        assert_eq!(with(&["zstd"]), Ok(Encoding::Zstd));
        for bad in [
            &["deflate"][..],
            &["br"],
            &["gzip, zstd"],
            &["gzip", "zstd"],
        ] {
            assert_eq!(with(bad), Err("invalid_request"), "{bad:?}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

        /// Any body compressed whole decodes to itself, pushed in any pieces; any strict
        /// prefix of it is refused.
        #[test]
        fn round_trips_and_prefixes(
            seed in any::<u64>(),
            len in 0usize..200_000,
            piece in 1usize..70_000,
            cut in any::<proptest::sample::Index>(),
            zstd_level in 1i32..6,
        ) {
            let data = text(seed, len);
            let bodies = [
                (Encoding::Gzip, gzip(&data)),
                (Encoding::Zstd, zstd::bulk::compress(&data, zstd_level).unwrap()),
            ];
            for (encoding, body) in bodies {
                prop_assert_eq!(decode(encoding, &body, piece).unwrap(), data.clone());
                let cut = cut.index(body.len());
                prop_assert!(decode(encoding, &body[..cut], piece).is_err());
            }
        }
    }
}
