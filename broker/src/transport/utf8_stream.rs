//! UTF-8 checked across chunk boundaries: a WebSocket text message arrives in pieces (frames,
//! fragments, reads) that may split a character, and RFC 6455 (section 8.1) wants the whole
//! message to be UTF-8. Only the ≤ 3 bytes of a character split between pieces are kept.

/// The state between pieces of one text message: an incomplete character's first bytes.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Utf8Stream {
    pending: [u8; 3],
    pending_len: u8,
}

/// The bytes are not UTF-8.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotUtf8;

impl Utf8Stream {
    /// Checks the next piece of the message.
    pub fn push(&mut self, mut piece: &[u8]) -> Result<(), NotUtf8> {
        if self.pending_len > 0 {
            piece = self.complete_pending(piece)?;
        }
        match std::str::from_utf8(piece) {
            Ok(_) => Ok(()),
            // An invalid sequence, as opposed to one cut short by the piece's end.
            Err(e) if e.error_len().is_some() => Err(NotUtf8),
            Err(e) => {
                let rest = &piece[e.valid_up_to()..];
                self.pending[..rest.len()].copy_from_slice(rest);
                self.pending_len = rest.len() as u8;
                Ok(())
            }
        }
    }

    /// The message ended: a character still incomplete is an error.
    pub fn finish(&mut self) -> Result<(), NotUtf8> {
        let complete = self.pending_len == 0;
        *self = Self::default();
        if complete { Ok(()) } else { Err(NotUtf8) }
    }

    /// Completes the character begun in the previous piece with the first bytes of `piece`;
    /// returns what follows it (empty if it is still incomplete).
    fn complete_pending<'a>(&mut self, piece: &'a [u8]) -> Result<&'a [u8], NotUtf8> {
        let have = usize::from(self.pending_len);
        let mut joined = [0u8; 4];
        joined[..have].copy_from_slice(&self.pending[..have]);
        let take = (4 - have).min(piece.len());
        joined[have..have + take].copy_from_slice(&piece[..take]);
        let joined = &joined[..have + take];
        let valid = match std::str::from_utf8(joined) {
            Ok(_) => joined.len(),
            Err(e) if e.error_len().is_some() && e.valid_up_to() == 0 => return Err(NotUtf8),
            Err(e) => e.valid_up_to(),
        };
        if valid == 0 {
            // Still cut short: the whole piece (under 4 bytes) joins the pending bytes.
            self.pending[..joined.len()].copy_from_slice(joined);
            self.pending_len = joined.len() as u8;
            return Ok(&piece[piece.len()..]);
        }
        // `valid` covers the pending character (and maybe more of `piece`, checked again below).
        self.pending_len = 0;
        Ok(&piece[valid - have..])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_split(bytes: &[u8], at: &[usize]) -> Result<(), NotUtf8> {
        let mut stream = Utf8Stream::default();
        let mut start = 0;
        for &end in at.iter().chain([&bytes.len()]) {
            stream.push(&bytes[start..end])?;
            start = end;
        }
        stream.finish()
    }

    #[test]
    fn text_split_anywhere_is_accepted_and_bad_bytes_refused_wherever_they_fall() {
        let good = "aé€𝄞z 日本".as_bytes();
        let mut bad = good.to_vec();
        bad.insert(3, 0xFF);
        let mut overlong = b"ab".to_vec();
        overlong.extend_from_slice(&[0xC0, 0x80]);
        let mut surrogate = b"x".to_vec();
        surrogate.extend_from_slice(&[0xED, 0xA0, 0x80]);
        for i in 0..=good.len() {
            for j in i..=good.len() {
                assert_eq!(check_split(good, &[i, j]), Ok(()), "split at {i}, {j}");
            }
        }
        for bytes in [&bad, &overlong, &surrogate] {
            for i in 0..=bytes.len() {
                assert_eq!(
                    check_split(bytes, &[i]),
                    Err(NotUtf8),
                    "{bytes:?} split at {i}"
                );
            }
        }
    }

    #[test]
    fn a_message_ending_inside_a_character_is_refused() {
        let euro = "€".as_bytes();
        for cut in 1..euro.len() {
            assert_eq!(check_split(&euro[..cut], &[]), Err(NotUtf8));
        }
        // The state is reset by `finish`: the next message starts clean.
        let mut stream = Utf8Stream::default();
        stream.push(&euro[..1]).expect("a prefix is fine");
        assert_eq!(stream.finish(), Err(NotUtf8));
        assert_eq!(stream.push(b"ok"), Ok(()));
        assert_eq!(stream.finish(), Ok(()));
    }

    #[test]
    fn pieces_of_one_byte_each_carry_a_four_byte_character() {
        let clef = "𝄞".as_bytes();
        let mut stream = Utf8Stream::default();
        for b in clef {
            stream
                .push(std::slice::from_ref(b))
                .expect("a prefix is fine");
        }
        assert_eq!(stream.finish(), Ok(()));
    }
}
