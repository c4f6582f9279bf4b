//! The echo app as a native app in Rust, the twin of `manifests/apps/native-echo-cpp/echo.cpp`:
//! `cargo build -p cocaine-native-echo` makes `target/debug/libcocaine_native_echo.so`, which
//! a manifest of type `native` names in its `args`.
//!
//! Events:
//! - `echo`: writes each request chunk back as it arrives;
//! - `sleep`: sleeps the number of milliseconds in the request, then replies with it (it
//!   does not look for cancels, so it shows what happens to a job that overruns);
//! - `fail`: fails with the code in the request if it is a number, else 502;
//! - `args`: replies with the `args` the instance was created with;
//! - anything else: 404.

use std::time::Duration;

use cocaine_worker::native::{NativeApp, NativeRequest, NativeResponse};
use cocaine_worker::HandlerError;

struct Echo {
    args: String,
}

impl NativeApp for Echo {
    fn create(args: &str) -> Result<Self, String> {
        Ok(Echo {
            args: args.to_owned(),
        })
    }

    fn handle(
        &self,
        event: &str,
        request: &mut NativeRequest<'_>,
        response: &mut NativeResponse<'_>,
    ) -> Result<(), HandlerError> {
        match event {
            "echo" => {
                for chunk in request {
                    response.write(&chunk)?;
                }
                Ok(())
            }
            "sleep" => {
                let body = request.read_all();
                let ms: u64 = String::from_utf8_lossy(&body)
                    .trim()
                    .parse()
                    .map_err(|_| HandlerError::with_code(400, "sleep wants milliseconds"))?;
                std::thread::sleep(Duration::from_millis(ms));
                response.write(&body)?;
                Ok(())
            }
            "fail" => {
                let body = request.read_all();
                let text = String::from_utf8_lossy(&body);
                Err(match text.trim().parse::<u32>() {
                    Ok(code) => HandlerError::with_code(code, format!("failed with {code}")),
                    Err(_) => HandlerError::new(format!("failed on {text:?}")),
                })
            }
            "args" => {
                request.read_all();
                response.write(self.args.as_bytes())?;
                Ok(())
            }
            other => Err(HandlerError::with_code(
                404,
                format!("no handler for event {other:?}"),
            )),
        }
    }
}

cocaine_worker::export_native!(Echo);
