//! A writer for Ruby's Marshal format 4.8, the encoding of RubyGems' `specs.4.8.gz` indexes and
//! `quick/Marshal.4.8/*.gemspec.rz` files. Only what those files hold is supported; repeated
//! symbols are written as symbol links the way Ruby does, repeated objects are written again
//! (Ruby links them, and loads either form to equal values).

/// A Ruby value to marshal.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Nil,
    Bool(bool),
    /// A Fixnum that fits Marshal's 4-byte integer form.
    Int(i32),
    /// A UTF-8 string (Ruby source literals and YAML strings).
    Str(String),
    /// A US-ASCII string, as Ruby's Time zone names are.
    AsciiStr(String),
    Symbol(String),
    Array(Vec<Value>),
    Hash(Vec<(Value, Value)>),
    /// A plain object with its instance variables (`@name`...).
    Object {
        class: String,
        ivars: Vec<(String, Value)>,
    },
    /// An object with `marshal_dump` (Gem::Version, Gem::Requirement): the class and the dumped value.
    UserMarshal {
        class: String,
        data: Box<Value>,
    },
    /// An object with `_dump` (Gem::Specification, Time): the class, the dumped bytes and
    /// instance variables attached to them.
    UserDump {
        class: String,
        bytes: Vec<u8>,
        ivars: Vec<(String, Value)>,
    },
}

impl Value {
    pub fn str(s: impl Into<String>) -> Value {
        Value::Str(s.into())
    }

    pub fn opt_str(s: Option<&str>) -> Value {
        s.map_or(Value::Nil, Value::str)
    }

    /// A `Time` at midnight UTC of a civil date, as Ruby's `Time#_dump` writes it.
    pub fn utc_date(year: u32, month: u32, day: u32) -> Value {
        // Time#_dump packs the broken-down time in two little-endian words: a marker bit, the UTC
        // flag, years since 1900, the month from 0, the day and hour; then minutes, seconds and
        // microseconds (all zero at midnight).
        let high: u32 = (1 << 31) | (1 << 30) | ((year - 1900) << 14) | ((month - 1) << 10) | (day << 5);
        let mut bytes = high.to_le_bytes().to_vec();
        bytes.extend_from_slice(&0u32.to_le_bytes());
        Value::UserDump { class: "Time".into(), bytes, ivars: vec![("zone".into(), Value::AsciiStr("UTC".into()))] }
    }
}

/// Marshals a value with the `4.8` header.
pub fn dump(value: &Value) -> Vec<u8> {
    let mut w = Writer { out: vec![4, 8], symbols: Vec::new() };
    w.value(value);
    w.out
}

struct Writer {
    out: Vec<u8>,
    symbols: Vec<String>,
}

impl Writer {
    fn value(&mut self, value: &Value) {
        match value {
            Value::Nil => self.out.push(b'0'),
            Value::Bool(true) => self.out.push(b'T'),
            Value::Bool(false) => self.out.push(b'F'),
            Value::Int(n) => {
                self.out.push(b'i');
                self.long(*n);
            }
            Value::Str(s) => self.string(s, true),
            Value::AsciiStr(s) => self.string(s, false),
            Value::Symbol(s) => self.symbol(s),
            Value::Array(items) => {
                self.out.push(b'[');
                self.len(items.len());
                for item in items {
                    self.value(item);
                }
            }
            Value::Hash(pairs) => {
                self.out.push(b'{');
                self.len(pairs.len());
                for (k, v) in pairs {
                    self.value(k);
                    self.value(v);
                }
            }
            Value::Object { class, ivars } => {
                self.out.push(b'o');
                self.symbol(class);
                self.ivars(ivars);
            }
            Value::UserMarshal { class, data } => {
                self.out.push(b'U');
                self.symbol(class);
                self.value(data);
            }
            Value::UserDump { class, bytes, ivars } => {
                if !ivars.is_empty() {
                    self.out.push(b'I');
                }
                self.out.push(b'u');
                self.symbol(class);
                self.bytes(bytes);
                if !ivars.is_empty() {
                    self.ivars(ivars);
                }
            }
        }
    }

    /// A string with its encoding as the `E` instance variable (true: UTF-8, false: US-ASCII).
    fn string(&mut self, s: &str, utf8: bool) {
        self.out.extend_from_slice(b"I\"");
        self.bytes(s.as_bytes());
        self.len(1);
        self.symbol("E");
        self.value(&Value::Bool(utf8));
    }

    fn ivars(&mut self, ivars: &[(String, Value)]) {
        self.len(ivars.len());
        for (name, value) in ivars {
            self.symbol(name);
            self.value(value);
        }
    }

    /// A symbol, or a link to its first occurrence in this dump.
    fn symbol(&mut self, name: &str) {
        if let Some(index) = self.symbols.iter().position(|s| s == name) {
            self.out.push(b';');
            self.len(index);
        } else {
            self.out.push(b':');
            self.bytes(name.as_bytes());
            self.symbols.push(name.to_string());
        }
    }

    fn bytes(&mut self, bytes: &[u8]) {
        self.len(bytes.len());
        self.out.extend_from_slice(bytes);
    }

    fn len(&mut self, n: usize) {
        self.long(i32::try_from(n).expect("Marshal lengths fit 31 bits"));
    }

    /// Marshal's integer form: small values in one byte, others as a signed byte count followed
    /// by that many little-endian bytes.
    fn long(&mut self, n: i32) {
        match n {
            0 => self.out.push(0),
            1..=122 => self.out.push(n as u8 + 5),
            -123..=-1 => self.out.push((n - 5) as u8),
            _ => {
                let mut rest = n;
                let mut bytes = Vec::new();
                loop {
                    bytes.push(rest as u8);
                    rest >>= 8;
                    if (n > 0 && rest == 0) || (n < 0 && rest == -1) {
                        break;
                    }
                }
                let count = bytes.len() as i8;
                self.out.push(if n > 0 { count as u8 } else { (-count) as u8 });
                self.out.extend_from_slice(&bytes);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bytes from `ruby -e 'p Marshal.dump(...)'` (Ruby 3.1).
    #[test]
    fn integers_and_strings_match_ruby() {
        let values = [-1, -123, -124, -200, 122, 123, 255, 256, 70000, (1 << 30) - 1]
            .into_iter()
            .map(Value::Int)
            .chain([Value::str("")])
            .collect();
        let ruby = b"\x04\x08[\x10i\xFAi\x80i\xFF\x84i\xFF8i\x7Fi\x01{i\x01\xFFi\x02\x00\x01i\x03p\x11\x01i\x04\xFF\xFF\xFF?I\"\x00\x06:\x06ET";
        assert_eq!(dump(&Value::Array(values)), ruby);
    }

    #[test]
    fn time_matches_ruby() {
        // Marshal.dump(Time.utc(2026, 11, 24))
        let ruby = b"\x04\x08Iu:\x09Time\x0D\x00\xAB\x1F\xC0\x00\x00\x00\x00\x06:\x09zoneI\"\x08UTC\x06:\x06EF";
        assert_eq!(dump(&Value::utc_date(2026, 11, 24)), ruby);
    }

    #[test]
    fn objects_and_symbol_links() {
        // Marshal.dump(Gem::Platform.new("x86_64-linux"))
        let ruby = b"\x04\x08o:\x12Gem::Platform\x08:\x09@cpuI\"\x0Bx86_64\x06:\x06ET:\x08@osI\"\x0Alinux\x06;\x07T:\x0D@version0";
        let platform = Value::Object {
            class: "Gem::Platform".into(),
            ivars: vec![
                ("@cpu".into(), Value::str("x86_64")),
                ("@os".into(), Value::str("linux")),
                ("@version".into(), Value::Nil),
            ],
        };
        assert_eq!(dump(&platform), ruby);
    }
}
