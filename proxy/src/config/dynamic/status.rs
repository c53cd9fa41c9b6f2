//! HTTP status ranges as Traefik writes them (`"500-599"`, `"404"`): the
//! parsed form a request checks a status against, for `failover.errors`
//! (and any other option taking Traefik's status list).
//!
//! Configuration only: parsed once per load; `contains` is a scan of a
//! few pairs and allocates nothing.

/// A list of inclusive status ranges.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatusRanges(Box<[(u16, u16)]>);

impl StatusRanges {
    /// Parses Traefik's status list: each entry a status (`"503"`) or an
    /// inclusive range (`"500-504"`). The error names the entry.
    pub fn parse<'a>(entries: impl IntoIterator<Item = &'a str>) -> Result<Self, String> {
        let mut ranges = Vec::new();
        for entry in entries {
            ranges.push(parse_range(entry)?);
        }
        Ok(Self(ranges.into()))
    }

    /// Whether `status` is in one of the ranges.
    #[inline]
    pub fn contains(&self, status: u16) -> bool {
        self.0.iter().any(|&(lo, hi)| lo <= status && status <= hi)
    }

    /// Whether there is no range at all.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The ranges, both ends included.
    pub fn ranges(&self) -> &[(u16, u16)] {
        &self.0
    }
}

fn parse_range(entry: &str) -> Result<(u16, u16), String> {
    let code = |s: &str| {
        s.parse::<u16>()
            .ok()
            .filter(|c| (100..=999).contains(c))
            .ok_or_else(|| {
                format!("invalid status {entry:?} (expected a status like \"503\" or a range like \"500-599\")")
            })
    };
    let (lo, hi) = match entry.split_once('-') {
        None => (code(entry)?, code(entry)?),
        Some((lo, hi)) => (code(lo)?, code(hi)?),
    };
    if lo > hi {
        return Err(format!(
            "invalid status range {entry:?}: {lo} is above {hi}"
        ));
    }
    Ok((lo, hi))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_statuses_and_ranges_contain_what_they_say() {
        let r = StatusRanges::parse(["500-502", "404"]).unwrap();
        for (status, inside) in [
            (499, false),
            (500, true),
            (501, true),
            (502, true),
            (503, false),
            (404, true),
            (405, false),
        ] {
            assert_eq!(r.contains(status), inside, "{status}");
        }
        assert!(StatusRanges::parse([]).unwrap().is_empty());
    }

    #[test]
    fn malformed_entries_are_named() {
        for bad in [
            "",
            "5xx",
            "500-",
            "-500",
            "500-502-504",
            "99",
            "502-500",
            " 500",
        ] {
            let e = StatusRanges::parse([bad]).unwrap_err();
            assert!(e.contains(&format!("{bad:?}")), "{bad}: {e}");
        }
    }
}
