//! Latency histograms and small statistics: the µs hdrhistogram every
//! driver records into, its HdrHistogram V2 serialization (base64 in JSON),
//! and median / min–max summaries over rounds (public: the comparison and
//! tests read runs with them).
//!
//! Runs after a load window, never inside one: nothing here is timed.

use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Deserializer, Serializer, V2Serializer};
use serde::{Deserialize, Serialize};

/// Highest latency a histogram tracks: 60 s in µs. Larger values saturate.
const MAX_US: u64 = 60_000_000;

/// A new latency histogram in µs with 3 significant digits.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_US, 3).expect("valid histogram bounds")
}

/// Records one latency in µs, saturating at the tracked maximum (a request
/// slower than 60 s is still counted, as 60 s).
pub fn record_us(h: &mut Histogram<u64>, us: u64) {
    h.saturating_record(us.clamp(1, MAX_US));
}

/// Merges `from` into `into` (same bounds by construction).
pub fn merge(into: &mut Histogram<u64>, from: &Histogram<u64>) {
    into.add(from).expect("histograms share bounds");
}

/// Serializes a histogram in HdrHistogram's V2 format, base64-encoded.
pub fn to_v2_base64(h: &Histogram<u64>) -> String {
    let mut buf = Vec::new();
    V2Serializer::new()
        .serialize(h, &mut buf)
        .expect("serializing into memory");
    base64_encode(&buf)
}

/// Parses a histogram written by [`to_v2_base64`].
pub fn from_v2_base64(s: &str) -> Result<Histogram<u64>, String> {
    let bytes = base64_decode(s)?;
    Deserializer::new()
        .deserialize(&mut &bytes[..])
        .map_err(|e| format!("bad V2 histogram: {e:?}"))
}

/// The percentiles every report shows, from one histogram, in µs.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq)]
pub struct Percentiles {
    /// 50th percentile.
    #[serde(deserialize_with = "nan_if_null")]
    pub p50: f64,
    /// 90th percentile.
    #[serde(deserialize_with = "nan_if_null")]
    pub p90: f64,
    /// 99th percentile.
    #[serde(deserialize_with = "nan_if_null")]
    pub p99: f64,
    /// 99.9th percentile.
    #[serde(deserialize_with = "nan_if_null")]
    pub p999: f64,
    /// Largest recorded value.
    #[serde(deserialize_with = "nan_if_null")]
    pub max: f64,
}

impl Percentiles {
    /// Reads the percentiles from a histogram (all zero when empty).
    pub fn of(h: &Histogram<u64>) -> Self {
        if h.is_empty() {
            return Self::default();
        }
        Self {
            p50: h.value_at_quantile(0.50) as f64,
            p90: h.value_at_quantile(0.90) as f64,
            p99: h.value_at_quantile(0.99) as f64,
            p999: h.value_at_quantile(0.999) as f64,
            max: h.max() as f64,
        }
    }
}

/// Reads a figure JSON wrote as `null` (serde_json's NaN: not measured)
/// back as NaN.
pub fn nan_if_null<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

/// Median and range of one figure over the rounds.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct Spread {
    /// Median over rounds (mean of the two middle values for an even count).
    pub median: f64,
    /// Smallest round.
    pub min: f64,
    /// Largest round.
    pub max: f64,
}

impl Spread {
    /// Summarises the values; `None` when there are none (NaN values are
    /// skipped: a figure a round could not measure).
    pub fn of(values: impl IntoIterator<Item = f64>) -> Option<Self> {
        let mut v: Vec<f64> = values.into_iter().filter(|x| x.is_finite()).collect();
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let median = if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        };
        Some(Self {
            median,
            min: v[0],
            max: v[n - 1],
        })
    }

    /// Half the range relative to the median: the noise the rounds show.
    pub fn relative_half_range(&self) -> f64 {
        if self.median.abs() < f64::EPSILON {
            return 0.0;
        }
        (self.max - self.min) / (2.0 * self.median.abs())
    }
}

// === base64 (RFC 4648, padded) ===

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn base64_encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(B64[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn base64_decode(s: &str) -> Result<Vec<u8>, String> {
    let s = s.trim().trim_end_matches('=');
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in s.bytes() {
        let v = B64
            .iter()
            .position(|&x| x == c)
            .ok_or_else(|| format!("invalid base64 byte {c:#x}"))? as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trips_all_lengths() {
        for len in 0..20u8 {
            let data: Vec<u8> = (0..len).map(|i| i.wrapping_mul(37)).collect();
            assert_eq!(base64_decode(&base64_encode(&data)).unwrap(), data);
        }
        assert_eq!(base64_encode(b"hello"), "aGVsbG8=");
    }

    #[test]
    fn histogram_merge_adds_counts_and_keeps_extremes() {
        let mut a = new_histogram();
        let mut b = new_histogram();
        for v in 1..=1000 {
            record_us(&mut a, v);
        }
        for v in 1001..=2000 {
            record_us(&mut b, v);
        }
        record_us(&mut b, 10 * MAX_US);
        merge(&mut a, &b);
        assert_eq!(a.len(), 2001);
        assert_eq!(a.min(), 1);
        assert!(a.max() >= MAX_US - MAX_US / 1000);
        let p = Percentiles::of(&a);
        assert!((p.p50 - 1000.0).abs() <= 2.0, "{p:?}");
    }

    #[test]
    fn histogram_v2_round_trip() {
        let mut h = new_histogram();
        for v in [3, 40, 500, 500, 6_000, 70_000] {
            record_us(&mut h, v);
        }
        let back = from_v2_base64(&to_v2_base64(&h)).unwrap();
        assert_eq!(back.len(), h.len());
        assert_eq!(Percentiles::of(&back), Percentiles::of(&h));
        assert_eq!(back, h);
    }

    #[test]
    fn a_figure_not_measured_survives_json() {
        let p = Percentiles {
            p999: f64::NAN,
            ..Percentiles::default()
        };
        let back: Percentiles = serde_json::from_str(&serde_json::to_string(&p).unwrap()).unwrap();
        assert!(back.p999.is_nan() && back.p50 == 0.0);
    }

    #[test]
    fn spread_median_and_range() {
        let s = Spread::of([3.0, 1.0, 2.0]).unwrap();
        assert_eq!((s.median, s.min, s.max), (2.0, 1.0, 3.0));
        assert_eq!(Spread::of([1.0, 3.0]).unwrap().median, 2.0);
        assert!(Spread::of([f64::NAN]).is_none());
        assert!((s.relative_half_range() - 0.5).abs() < 1e-9);
    }
}
