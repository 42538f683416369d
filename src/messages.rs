// SPDX-License-Identifier: GPL-2.0

//! The wire format and protocol constants (upstream `messages.h`).
//!
//! Four messages, all little-endian, each starting with a 32-bit type whose
//! upper three bytes are zero:
//!
//! | message | length | fields after the type |
//! | --- | --- | --- |
//! | handshake initiation | 148 | sender index, ephemeral (32), static (32+16), timestamp (12+16), mac1, mac2 |
//! | handshake response | 92 | sender index, receiver index, ephemeral (32), empty (0+16), mac1, mac2 |
//! | cookie reply | 64 | receiver index, nonce (24), cookie (16+16) |
//! | data | 16 + n | receiver index, counter (64 bits), then the encrypted packet |
//!
//! Handshake messages are parsed from and serialised to byte slices with
//! explicit offsets (no `unsafe`, no panics: every access is checked and a
//! wrong length is a parse failure). Indices are opaque 32-bit values: we
//! pick ours at random, and the peer echoes the bytes we sent, so reading
//! and writing them little-endian is only a convention kept on both ends.

use crate::kapi::crypto::{AUTHTAG_LEN, HASH_LEN, KEY_LEN, XNONCE_LEN};
use crate::kapi::time::HZ;

pub(crate) const NOISE_PUBLIC_KEY_LEN: usize = KEY_LEN;
pub(crate) const NOISE_SYMMETRIC_KEY_LEN: usize = KEY_LEN;
/// TAI64N: 64-bit seconds and 32-bit nanoseconds, big-endian.
pub(crate) const NOISE_TIMESTAMP_LEN: usize = 8 + 4;
/// Poly1305 tag length.
pub(crate) const NOISE_AUTHTAG_LEN: usize = AUTHTAG_LEN;
pub(crate) const NOISE_HASH_LEN: usize = HASH_LEN;

pub(crate) const fn noise_encrypted_len(plain_len: usize) -> usize {
    plain_len + NOISE_AUTHTAG_LEN
}

/// Seconds after which the cookie secret is renewed and a cookie expires.
pub(crate) const COOKIE_SECRET_MAX_AGE: u64 = 2 * 60;
/// How much earlier than the secret a cookie is given up, for clock skew
/// and transit time.
pub(crate) const COOKIE_SECRET_LATENCY: u64 = 5;
pub(crate) const COOKIE_NONCE_LEN: usize = XNONCE_LEN;
pub(crate) const COOKIE_LEN: usize = 16;

/// The replay window: a ring of machine words, one of which is always
/// being recycled.
pub(crate) const COUNTER_BITS_TOTAL: u64 = 8192;
pub(crate) const COUNTER_REDUNDANT_BITS: u64 = usize::BITS as u64;
pub(crate) const COUNTER_WINDOW_SIZE: u64 = COUNTER_BITS_TOTAL - COUNTER_REDUNDANT_BITS;

pub(crate) const REKEY_AFTER_MESSAGES: u64 = 1 << 60;
pub(crate) const REJECT_AFTER_MESSAGES: u64 = u64::MAX - COUNTER_WINDOW_SIZE - 1;
pub(crate) const REKEY_TIMEOUT: u64 = 5;
pub(crate) const REKEY_TIMEOUT_JITTER_MAX_JIFFIES: u64 = HZ / 3;
pub(crate) const REKEY_AFTER_TIME: u64 = 120;
pub(crate) const REJECT_AFTER_TIME: u64 = 180;
pub(crate) const INITIATIONS_PER_SECOND: u64 = 50;
#[expect(dead_code, reason = "peer.rs has its own until the datapath moves to this one")]
pub(crate) const MAX_PEERS_PER_DEVICE: usize = 1 << 20;
pub(crate) const KEEPALIVE_TIMEOUT: u64 = 10;
pub(crate) const MAX_TIMER_HANDSHAKES: u64 = 90 / REKEY_TIMEOUT;
pub(crate) const MAX_QUEUED_INCOMING_HANDSHAKES: usize = 4096;
pub(crate) const MAX_STAGED_PACKETS: usize = 128;
pub(crate) const MAX_QUEUED_PACKETS: usize = 1024;

/// The outer DS field of handshake messages: AF41, no ECN.
pub(crate) const HANDSHAKE_DSCP: u8 = 0x88;

/// Data messages are padded to a multiple of this.
pub(crate) const MESSAGE_PADDING_MULTIPLE: usize = 16;

/// Header of a data message: type, receiver index, counter.
pub(crate) const MESSAGE_DATA_HEADER_LEN: usize = 4 + 4 + 8;

pub(crate) const fn message_data_len(plain_len: usize) -> usize {
    noise_encrypted_len(plain_len) + MESSAGE_DATA_HEADER_LEN
}

/// The smallest data message: a keepalive.
pub(crate) const MESSAGE_MINIMUM_LENGTH: usize = message_data_len(0);

/// Both MACs, at the end of the handshake initiation and response.
pub(crate) const MESSAGE_MACS_LEN: usize = 2 * COOKIE_LEN;

pub(crate) const MESSAGE_INITIATION_LEN: usize = 4
    + 4
    + NOISE_PUBLIC_KEY_LEN
    + noise_encrypted_len(NOISE_PUBLIC_KEY_LEN)
    + noise_encrypted_len(NOISE_TIMESTAMP_LEN)
    + MESSAGE_MACS_LEN;
pub(crate) const MESSAGE_RESPONSE_LEN: usize =
    4 + 4 + 4 + NOISE_PUBLIC_KEY_LEN + noise_encrypted_len(0) + MESSAGE_MACS_LEN;
pub(crate) const MESSAGE_COOKIE_LEN: usize = 4 + 4 + COOKIE_NONCE_LEN + noise_encrypted_len(COOKIE_LEN);

// The sizes of upstream's structs.
const _: () = assert!(
    MESSAGE_INITIATION_LEN == 148
        && MESSAGE_RESPONSE_LEN == 92
        && MESSAGE_COOKIE_LEN == 64
        && MESSAGE_DATA_HEADER_LEN == 16
        && MESSAGE_MINIMUM_LENGTH == 32
);

/// The message types (the first byte; the next three are zero).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub(crate) enum MessageType {
    HandshakeInitiation = 1,
    HandshakeResponse = 2,
    HandshakeCookie = 3,
    Data = 4,
}

impl MessageType {
    /// The type of `packet` (a UDP payload), if its length is valid for that
    /// type: exact for handshake messages, at least a keepalive for data
    /// (upstream `validate_header_len`). `MESSAGE_INVALID` (0) and unknown
    /// types are `None`.
    pub(crate) fn of(packet: &[u8]) -> Option<MessageType> {
        let header = u32::from_le_bytes(*packet.first_chunk::<4>()?);
        let (kind, valid) = match header {
            1 => (MessageType::HandshakeInitiation, packet.len() == MESSAGE_INITIATION_LEN),
            2 => (MessageType::HandshakeResponse, packet.len() == MESSAGE_RESPONSE_LEN),
            3 => (MessageType::HandshakeCookie, packet.len() == MESSAGE_COOKIE_LEN),
            4 => (MessageType::Data, packet.len() >= MESSAGE_MINIMUM_LENGTH),
            _ => return None,
        };
        valid.then_some(kind)
    }

    fn header(self) -> [u8; 4] {
        (self as u32).to_le_bytes()
    }
}

/// Sequential reads of fixed-size fields; a short input makes every later
/// read fail instead of panicking.
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn bytes<const N: usize>(&mut self) -> Option<[u8; N]> {
        let (field, rest) = self.0.split_first_chunk::<N>()?;
        self.0 = rest;
        Some(*field)
    }
}

/// Sequential writes into a buffer of the message's exact size.
struct Writer<'a>(&'a mut [u8]);

impl Writer<'_> {
    fn bytes(&mut self, field: &[u8]) {
        let buf = core::mem::take(&mut self.0);
        if let Some((dst, rest)) = buf.split_at_mut_checked(field.len()) {
            dst.copy_from_slice(field);
            self.0 = rest;
        }
    }
}

/// A field of a message.
trait Field: Sized {
    const LEN: usize;
    fn read(r: &mut Reader<'_>) -> Option<Self>;
    fn write(&self, w: &mut Writer<'_>);
}

/// Integers: little-endian.
macro_rules! integer_field {
    ($($ty:ty),*) => {$(
        impl Field for $ty {
            const LEN: usize = core::mem::size_of::<$ty>();

            fn read(r: &mut Reader<'_>) -> Option<Self> {
                r.bytes().map(<$ty>::from_le_bytes)
            }

            fn write(&self, w: &mut Writer<'_>) {
                w.bytes(&self.to_le_bytes());
            }
        }
    )*};
}

integer_field!(u32, u64);

impl<const N: usize> Field for [u8; N] {
    const LEN: usize = N;

    fn read(r: &mut Reader<'_>) -> Option<Self> {
        r.bytes()
    }

    fn write(&self, w: &mut Writer<'_>) {
        w.bytes(self);
    }
}

/// Declares a message: a type, then its fields in wire order, read from
/// and written to exactly `$len` bytes (checked at compile time).
macro_rules! message {
    ($(#[$doc:meta])* $name:ident: $kind:ident, $len:expr, {
        $($(#[$field_doc:meta])* $field:ident: $ty:ty,)*
    }) => {
        $(#[$doc])*
        #[derive(Clone, Copy)]
        pub(crate) struct $name {
            $($(#[$field_doc])* pub(crate) $field: $ty,)*
        }

        const _: () = assert!(4 $(+ <$ty as Field>::LEN)* == $len);

        impl Field for $name {
            const LEN: usize = 0 $(+ <$ty as Field>::LEN)*;

            fn read(r: &mut Reader<'_>) -> Option<Self> {
                Some($name { $($field: Field::read(r)?,)* })
            }

            fn write(&self, w: &mut Writer<'_>) {
                $(self.$field.write(w);)*
            }
        }

        impl $name {
            /// Parses a whole message: exactly its length, and its type.
            pub(crate) fn from_bytes(bytes: &[u8]) -> Option<$name> {
                let bytes: &[u8; $len] = bytes.try_into().ok()?;
                let mut r = Reader(bytes);
                if r.bytes::<4>()? != MessageType::$kind.header() {
                    return None;
                }
                Self::read(&mut r)
            }

            pub(crate) fn to_bytes(&self) -> [u8; $len] {
                let mut bytes = [0; $len];
                let mut w = Writer(&mut bytes);
                w.bytes(&MessageType::$kind.header());
                self.write(&mut w);
                bytes
            }
        }
    };
}

/// mac1 and mac2 (see `cookie.rs`).
#[derive(Clone, Copy, Default)]
pub(crate) struct Macs {
    pub(crate) mac1: [u8; COOKIE_LEN],
    pub(crate) mac2: [u8; COOKIE_LEN],
}

impl Field for Macs {
    const LEN: usize = MESSAGE_MACS_LEN;

    fn read(r: &mut Reader<'_>) -> Option<Macs> {
        Some(Macs { mac1: r.bytes()?, mac2: r.bytes()? })
    }

    fn write(&self, w: &mut Writer<'_>) {
        w.bytes(&self.mac1);
        w.bytes(&self.mac2);
    }
}

message! {
    /// The first handshake message, initiator to responder.
    Initiation: HandshakeInitiation, MESSAGE_INITIATION_LEN, {
        sender_index: u32,
        unencrypted_ephemeral: [u8; NOISE_PUBLIC_KEY_LEN],
        encrypted_static: [u8; noise_encrypted_len(NOISE_PUBLIC_KEY_LEN)],
        encrypted_timestamp: [u8; noise_encrypted_len(NOISE_TIMESTAMP_LEN)],
        macs: Macs,
    }
}

message! {
    /// The second handshake message, responder to initiator.
    Response: HandshakeResponse, MESSAGE_RESPONSE_LEN, {
        sender_index: u32,
        receiver_index: u32,
        unencrypted_ephemeral: [u8; NOISE_PUBLIC_KEY_LEN],
        encrypted_nothing: [u8; noise_encrypted_len(0)],
        macs: Macs,
    }
}

message! {
    /// A cookie reply: sent instead of a response when under load.
    CookieReply: HandshakeCookie, MESSAGE_COOKIE_LEN, {
        receiver_index: u32,
        nonce: [u8; COOKIE_NONCE_LEN],
        encrypted_cookie: [u8; noise_encrypted_len(COOKIE_LEN)],
    }
}

message! {
    /// The header of a data message; the encrypted packet follows it.
    DataHeader: Data, MESSAGE_DATA_HEADER_LEN, {
        receiver_index: u32,
        counter: u64,
    }
}

impl DataHeader {
    /// The header of a data message (at least `MESSAGE_MINIMUM_LENGTH`).
    pub(crate) fn from_packet(packet: &[u8]) -> Option<DataHeader> {
        if MessageType::of(packet)? != MessageType::Data {
            return None;
        }
        DataHeader::from_bytes(packet.first_chunk::<MESSAGE_DATA_HEADER_LEN>()?)
    }
}
