//! State in one S3 object, written with conditional requests so that two overlapping runs
//! cannot clobber each other: `If-None-Match: *` when the object is created, `If-Match` with
//! the ETag read (or last written) afterwards. A write that loses the race gets HTTP 412 and
//! becomes [`StateError::Conflict`]; nothing of the losing run is saved.
//!
//! The bucket may be in any region: the store calls through a [`super::BucketClient`], which
//! goes on in the region S3 names for the bucket, for this call and every later one.

use std::sync::Mutex;

use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::ByteStream;

use crate::state::{State, StateError, StateStore};

pub use crate::state::S3Location;

/// The state object in S3.
pub struct S3Store {
    client: super::BucketClient,
    location: S3Location,
    runtime: tokio::runtime::Handle,
    /// The ETag of the version this store last read or wrote; None when there was none.
    etag: Mutex<Option<String>>,
}

impl S3Store {
    /// `runtime` runs the calls; the store's methods must not be called from inside it.
    pub fn new(client: Client, location: S3Location, runtime: tokio::runtime::Handle) -> S3Store {
        S3Store {
            client: super::BucketClient::new(client),
            location,
            runtime,
            etag: Mutex::new(None),
        }
    }

    fn io(&self, message: String) -> StateError {
        StateError::Io {
            origin: self.describe(),
            source: std::io::Error::other(message),
        }
    }
}

impl StateStore for S3Store {
    fn load(&self) -> Result<Option<State>, StateError> {
        let bucket = &self.location.bucket;
        let get = |c: &Client| {
            self.runtime
                .block_on(c.get_object().bucket(bucket).key(&self.location.key).send())
                .map_err(Box::new)
        };
        let asked = self.client.get(bucket);
        let got = match get(&asked) {
            Err(e) if self.client.moved(&e, bucket, &asked) => get(&self.client.get(bucket)),
            got => got,
        };
        let out = match got {
            Ok(out) => out,
            Err(e)
                if e.as_service_error().is_some_and(
                    aws_sdk_s3::operation::get_object::GetObjectError::is_no_such_key,
                ) =>
            {
                *self.etag.lock().unwrap_or_else(|e| e.into_inner()) = None;
                return Ok(None);
            }
            Err(e) => return Err(self.io(super::describe_error(&*e))),
        };
        let etag = out.e_tag().map(str::to_string);
        let bytes = self
            .runtime
            .block_on(out.body.collect())
            .map_err(|e| self.io(format!("reading the object: {e}")))?
            .into_bytes();
        let state = State::decode(&bytes[..], &self.describe())?;
        *self.etag.lock().unwrap_or_else(|e| e.into_inner()) = etag;
        Ok(Some(state))
    }

    fn save(&self, state: &State) -> Result<(), StateError> {
        let expected = self.etag.lock().unwrap_or_else(|e| e.into_inner()).clone();
        // In memory: sent again as it is (not copied) should S3 name another region.
        let body = aws_smithy_types::body::SdkBody::from(state.encode());
        let bucket = &self.location.bucket;
        let put = |c: &Client, body: aws_smithy_types::body::SdkBody| {
            let put = c
                .put_object()
                .bucket(bucket)
                .key(&self.location.key)
                .content_type("application/zstd")
                .body(ByteStream::new(body));
            let put = match &expected {
                Some(etag) => put.if_match(etag),
                None => put.if_none_match("*"),
            };
            self.runtime.block_on(put.send()).map_err(Box::new)
        };
        let first = body.try_clone().expect("a body held in memory clones");
        let asked = self.client.get(bucket);
        let sent = match put(&asked, first) {
            Err(e) if self.client.moved(&e, bucket, &asked) => put(&self.client.get(bucket), body),
            sent => sent,
        };
        match sent {
            Ok(out) => {
                *self.etag.lock().unwrap_or_else(|e| e.into_inner()) =
                    out.e_tag().map(str::to_string);
                Ok(())
            }
            Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 412) => {
                Err(StateError::Conflict {
                    origin: self.describe(),
                })
            }
            Err(e) => Err(self.io(super::describe_error(&*e))),
        }
    }

    fn describe(&self) -> String {
        self.location.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations() {
        let l: S3Location = "s3://my-bucket/correlator/state.json".parse().unwrap();
        assert_eq!(l.bucket, "my-bucket");
        assert_eq!(l.key, "correlator/state.json");
        assert_eq!(l.to_string(), "s3://my-bucket/correlator/state.json");
        for bad in [
            "my-bucket/state.json",
            "s3://my-bucket",
            "s3://my-bucket/",
            "s3:///k",
            "s3://b/dir/",
        ] {
            assert!(bad.parse::<S3Location>().is_err(), "{bad}");
        }
    }
}
