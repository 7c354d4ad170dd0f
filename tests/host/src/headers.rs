//! Header maps with Envoy's ordering, and the proxy-wasm pair serialization.

/// Most pairs a serialized map may hold (cpp-host `PROXY_WASM_HOST_PAIRS_MAX_COUNT`).
const PAIRS_MAX_COUNT: usize = 1024;
/// Most bytes a serialized map may take (cpp-host `PROXY_WASM_HOST_PAIRS_MAX_BYTES`).
const PAIRS_MAX_BYTES: usize = 1024 * 1024;

/// An ordered header map that behaves like Envoy's `HeaderMapImpl`.
///
/// Names are lower-cased on insertion. Pseudo-headers (names starting with `:`) stay in
/// front of all other headers, as `HeaderList::insert` in Envoy's
/// `source/common/http/header_map_impl.h` keeps them; other headers keep insertion order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct HeaderMap {
    entries: Vec<(String, String)>,
}

impl HeaderMap {
    pub(crate) fn from_pairs<I, K, V>(pairs: I) -> HeaderMap
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let mut map = HeaderMap::default();
        for (key, value) in pairs {
            map.add(key.as_ref(), value.as_ref());
        }
        map
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    pub(crate) fn pairs(&self) -> &[(String, String)] {
        &self.entries
    }

    /// Sum of the name and value lengths, Envoy's `HeaderMap::byteSize`.
    pub(crate) fn byte_size(&self) -> usize {
        self.entries.iter().map(|(k, v)| k.len() + v.len()).sum()
    }

    /// Returns the first value of `key`.
    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        let key = key.to_ascii_lowercase();
        self.entries
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Adds a value (Envoy `addCopy`). A second value for a pseudo-header is appended to the
    /// first with a comma, because Envoy stores pseudo-headers as single inline entries.
    // NOTE: Envoy also stores some regular headers (content-type, user-agent, ...) inline and
    // joins their repeated values the same way. This map keeps those as separate entries.
    pub(crate) fn add(&mut self, key: &str, value: &str) {
        let key = key.to_ascii_lowercase();
        if key.starts_with(':') {
            if let Some(entry) = self.entries.iter_mut().find(|(k, _)| *k == key) {
                entry.1.push(',');
                entry.1.push_str(value);
                return;
            }
            let end = self
                .entries
                .iter()
                .position(|(k, _)| !k.starts_with(':'))
                .unwrap_or(self.entries.len());
            self.entries.insert(end, (key, value.to_string()));
        } else {
            self.entries.push((key, value.to_string()));
        }
    }

    /// Replaces every value of `key` with one value (Envoy `setCopy`, which removes the
    /// header and adds it again, so the header moves to the end of its section).
    pub(crate) fn set(&mut self, key: &str, value: &str) {
        self.remove(key);
        self.add(key, value);
    }

    pub(crate) fn remove(&mut self, key: &str) {
        // Stored names are lower case, so a case-insensitive comparison finds the same
        // entries as comparing with the lower-cased key, without allocating it.
        self.entries.retain(|(k, _)| !k.eq_ignore_ascii_case(key));
    }
}

/// Serializes pairs in the proxy-wasm map format: a count, the lengths of every name and
/// value, then each name and value followed by a NUL byte, all integers little-endian.
pub(crate) fn serialize_pairs(pairs: &[(String, String)]) -> Vec<u8> {
    let mut size = 4;
    for (k, v) in pairs {
        size += 8 + k.len() + 1 + v.len() + 1;
    }
    let mut out = Vec::with_capacity(size);
    out.extend_from_slice(&u32_len(pairs.len()).to_le_bytes());
    for (k, v) in pairs {
        out.extend_from_slice(&u32_len(k.len()).to_le_bytes());
        out.extend_from_slice(&u32_len(v.len()).to_le_bytes());
    }
    for (k, v) in pairs {
        out.extend_from_slice(k.as_bytes());
        out.push(0);
        out.extend_from_slice(v.as_bytes());
        out.push(0);
    }
    out
}

fn u32_len(len: usize) -> u32 {
    u32::try_from(len).unwrap_or(u32::MAX)
}

/// Parses a serialized map the way cpp-host `PairsUtil::toPairs` does: any malformed input
/// (short, too large, missing NUL terminators) yields no pairs rather than an error.
/// Names and values that are not UTF-8 are converted lossily.
pub(crate) fn parse_pairs(bytes: &[u8]) -> Vec<(String, String)> {
    parse_pairs_checked(bytes).unwrap_or_default()
}

fn parse_pairs_checked(bytes: &[u8]) -> Option<Vec<(String, String)>> {
    if bytes.len() > PAIRS_MAX_BYTES {
        return None;
    }
    let count = read_u32(bytes, 0)? as usize;
    if count > PAIRS_MAX_COUNT {
        return None;
    }
    let mut sizes = Vec::with_capacity(count);
    for i in 0..count {
        let name_len = read_u32(bytes, 4 + i * 8)? as usize;
        let value_len = read_u32(bytes, 8 + i * 8)? as usize;
        sizes.push((name_len, value_len));
    }
    let mut pos = 4 + count * 8;
    let mut pairs = Vec::with_capacity(count);
    for (name_len, value_len) in sizes {
        let name = take_terminated(bytes, &mut pos, name_len)?;
        let value = take_terminated(bytes, &mut pos, value_len)?;
        pairs.push((name, value));
    }
    Some(pairs)
}

fn read_u32(bytes: &[u8], at: usize) -> Option<u32> {
    let slice = bytes.get(at..at.checked_add(4)?)?;
    let array: [u8; 4] = slice.try_into().ok()?;
    Some(u32::from_le_bytes(array))
}

fn take_terminated(bytes: &[u8], pos: &mut usize, len: usize) -> Option<String> {
    let end = pos.checked_add(len)?;
    let text = bytes.get(*pos..end)?;
    if *bytes.get(end)? != 0 {
        return None;
    }
    *pos = end + 1;
    Some(String::from_utf8_lossy(text).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pseudo_headers_stay_first() {
        let mut map = HeaderMap::from_pairs([("x-a", "1"), (":path", "/")]);
        map.add(":method", "GET");
        map.add("X-B", "2");
        let names: Vec<&str> = map.pairs().iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(names, [":path", ":method", "x-a", "x-b"]);
    }

    #[test]
    fn set_moves_header_to_end() {
        let mut map = HeaderMap::from_pairs([("a", "1"), ("b", "2"), ("a", "3")]);
        map.set("a", "4");
        assert_eq!(
            map.pairs(),
            [
                ("b".to_string(), "2".to_string()),
                ("a".to_string(), "4".to_string())
            ]
        );
    }

    #[test]
    fn repeated_pseudo_header_is_joined() {
        let mut map = HeaderMap::from_pairs([(":path", "/a")]);
        map.add(":path", "/b");
        assert_eq!(map.get(":path"), Some("/a,/b"));
        assert_eq!(map.len(), 1);
    }

    #[test]
    fn pairs_round_trip() {
        let pairs = vec![
            ("a".to_string(), "1".to_string()),
            ("bb".to_string(), "22".to_string()),
        ];
        let bytes = serialize_pairs(&pairs);
        assert_eq!(
            bytes,
            [
                2, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, b'a', 0, b'1', 0, b'b',
                b'b', 0, b'2', b'2', 0
            ]
        );
        assert_eq!(parse_pairs(&bytes), pairs);
    }

    #[test]
    fn malformed_pairs_parse_to_nothing() {
        let mut bytes = serialize_pairs(&[("a".to_string(), "1".to_string())]);
        let last = bytes.len() - 1;
        bytes[last] = b'x';
        assert!(parse_pairs(&bytes).is_empty());
        assert!(parse_pairs(&[1, 0]).is_empty());
        assert!(parse_pairs(&[255, 255, 255, 255]).is_empty());
    }
}
