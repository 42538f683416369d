// SPDX-License-Identifier: GPL-2.0

//! Protocol constants and message sizes (upstream `messages.h`).

/// Poly1305 tag length.
pub(crate) const NOISE_AUTHTAG_LEN: usize = 16;

/// Data messages are padded to a multiple of this.
pub(crate) const MESSAGE_PADDING_MULTIPLE: usize = 16;

/// Header of a data message: type, receiver index, counter.
pub(crate) const MESSAGE_DATA_HEADER_LEN: usize = 16;

pub(crate) const fn noise_encrypted_len(plain_len: usize) -> usize {
    plain_len + NOISE_AUTHTAG_LEN
}

/// The smallest data message: a keepalive.
pub(crate) const MESSAGE_MINIMUM_LENGTH: usize = MESSAGE_DATA_HEADER_LEN + noise_encrypted_len(0);
