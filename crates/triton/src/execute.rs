//! One batch of requests: each is an inference (input `ciphertext` and the
//! key id, as the request parameter `key_id` or an input of that name) or
//! a key registration (input `eval_keys`, answered with output `key_id`).
//! Every request gets one response, an error one when it is refused, and
//! is released; the statistics Triton reports are recorded for each.

use std::ffi::{c_char, CString};
use std::ptr;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use heman_server::service::{INPUT_NAME, KEY_ID_PARAMETER, OUTPUT_NAME};

use crate::api::{check, text, Failure};
use crate::ffi;
use crate::model::ModelState;

/// The input carrying evaluation keys to register.
pub const EVAL_KEYS_INPUT: &str = "eval_keys";

/// What a request is answered with: an output's name and its one element.
struct Reply {
    output: &'static str,
    element: Vec<u8>,
}

/// Whether a buffer of this memory type can be read and written here.
fn in_host_memory(memory: std::os::raw::c_int) -> bool {
    memory == ffi::MEMORY_CPU || memory == ffi::MEMORY_CPU_PINNED
}

/// Nanoseconds on the clock Triton's statistics use.
fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// Answers and releases every request of a batch.
///
/// # Safety
/// `instance` and every request are live Triton objects handed to
/// `TRITONBACKEND_ModelInstanceExecute`; the requests are released here.
pub unsafe fn batch(
    state: &ModelState,
    instance: *mut ffi::TRITONBACKEND_ModelInstance,
    requests: &[*mut ffi::TRITONBACKEND_Request],
) {
    let start = now_ns();
    for &request in requests {
        let exec_start = now_ns();
        // A panic must not cross into Triton (it would abort the server):
        // it fails this request only.
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            // SAFETY: the request is live until released below.
            unsafe { answer(state, request) }
        }))
        .unwrap_or_else(|_| {
            Err(Failure::internal(
                "the heman backend panicked on this request",
            ))
        });
        let compute_end = now_ns();
        let success = outcome.is_ok();
        if let Err(e) = &outcome {
            tracing::info!(error = %e.message, "heman request refused");
        }
        // SAFETY: as above; the response is created and sent for this request.
        let sent = unsafe { respond(request, outcome) };
        if let Err(e) = sent {
            tracing::error!(error = %e.message, "sending a response failed");
        }
        // SAFETY: statistics are reported before the request is released.
        unsafe {
            let reported = ffi::TRITONBACKEND_ModelInstanceReportStatistics(
                instance,
                request,
                success,
                exec_start,
                exec_start,
                compute_end,
                now_ns(),
            );
            let _ = check(reported, "reporting statistics");
            let released = ffi::TRITONBACKEND_RequestRelease(request, ffi::REQUEST_RELEASE_ALL);
            let _ = check(released, "releasing a request");
        }
    }
    let end = now_ns();
    // SAFETY: `instance` is live for the call.
    let reported = unsafe {
        ffi::TRITONBACKEND_ModelInstanceReportBatchStatistics(
            instance,
            requests.len() as u64,
            start,
            start,
            end,
            end,
        )
    };
    let _ = check(reported, "reporting batch statistics");
}

/// Handles one request.
///
/// # Safety
/// `request` is a live Triton request.
unsafe fn answer(
    state: &ModelState,
    request: *mut ffi::TRITONBACKEND_Request,
) -> Result<Reply, Failure> {
    // SAFETY: the caller's contract, for every read below.
    unsafe {
        if let Some(keys) = input_element(request, EVAL_KEYS_INPUT)? {
            let id = state.register(keys)?;
            return Ok(Reply {
                output: KEY_ID_PARAMETER,
                element: id.into_bytes(),
            });
        }
        let Some(ciphertext) = input_element(request, INPUT_NAME)? else {
            return Err(Failure::invalid(format!(
                "the request has neither input '{INPUT_NAME}' (a heman ciphertext file) nor '{EVAL_KEYS_INPUT}' (evaluation keys to register)"
            )));
        };
        let key_id = match string_parameter(request, KEY_ID_PARAMETER)? {
            Some(id) => id,
            None => match input_element(request, KEY_ID_PARAMETER)? {
                Some(id) => String::from_utf8_lossy(&id).into_owned(),
                None => {
                    return Err(Failure::invalid(format!(
                        "no key id: register evaluation keys once (a request with input '{EVAL_KEYS_INPUT}' answers their '{KEY_ID_PARAMETER}') and pass it as the request parameter or input '{KEY_ID_PARAMETER}'"
                    )))
                }
            },
        };
        let output = state.infer(&key_id, &ciphertext)?;
        Ok(Reply {
            output: OUTPUT_NAME,
            element: output,
        })
    }
}

/// The string request parameter `name`, if the request has it.
///
/// # Safety
/// `request` is a live Triton request.
unsafe fn string_parameter(
    request: *mut ffi::TRITONBACKEND_Request,
    name: &str,
) -> Result<Option<String>, Failure> {
    let mut count = 0u32;
    // SAFETY: the caller's contract; Triton owns the returned key and value.
    unsafe {
        check(
            ffi::TRITONBACKEND_RequestParameterCount(request, &mut count),
            "request parameters",
        )?;
        for index in 0..count {
            let (mut key, mut kind, mut value) = (ptr::null(), 0, ptr::null());
            check(
                ffi::TRITONBACKEND_RequestParameter(
                    request, index, &mut key, &mut kind, &mut value,
                ),
                "a request parameter",
            )?;
            if text(key) != name {
                continue;
            }
            if kind != ffi::PARAMETER_STRING {
                return Err(Failure::invalid(format!(
                    "parameter '{name}' must be a string"
                )));
            }
            return Ok(Some(text(value as *const c_char)));
        }
    }
    Ok(None)
}

/// The one element of the BYTES input `name` of shape `[1]`, if the
/// request has that input.
///
/// # Safety
/// `request` is a live Triton request.
unsafe fn input_element(
    request: *mut ffi::TRITONBACKEND_Request,
    name: &str,
) -> Result<Option<Bytes>, Failure> {
    let c_name = CString::new(name).expect("input names have no NUL");
    let mut input = ptr::null_mut();
    // SAFETY: the caller's contract; a missing input is an error, not UB.
    let found = unsafe { ffi::TRITONBACKEND_RequestInput(request, c_name.as_ptr(), &mut input) };
    if check(found, "").is_err() || input.is_null() {
        return Ok(None);
    }
    let (mut datatype, mut shape, mut dims, mut size, mut buffers) =
        (0, ptr::null(), 0u32, 0u64, 0u32);
    // SAFETY: `input` is live as long as the request; the shape has `dims`
    // entries, owned by the input.
    let shape = unsafe {
        check(
            ffi::TRITONBACKEND_InputProperties(
                input,
                ptr::null_mut(),
                &mut datatype,
                &mut shape,
                &mut dims,
                &mut size,
                &mut buffers,
            ),
            "input properties",
        )?;
        std::slice::from_raw_parts(shape, dims as usize).to_vec()
    };
    if datatype != ffi::TYPE_BYTES || shape != [1] {
        return Err(Failure::invalid(format!(
            "input '{name}' must be BYTES of shape [1] (one file), got datatype {datatype}, shape {shape:?}"
        )));
    }
    let mut raw = Vec::with_capacity(size as usize);
    for index in 0..buffers {
        let (mut buffer, mut length, mut memory, mut memory_id) =
            (ptr::null(), 0u64, ffi::MEMORY_CPU, 0i64);
        // SAFETY: the buffer is the input's, `length` bytes, live with it;
        // only host memory is read.
        unsafe {
            check(
                ffi::TRITONBACKEND_InputBuffer(
                    input,
                    index,
                    &mut buffer,
                    &mut length,
                    &mut memory,
                    &mut memory_id,
                ),
                "input buffer",
            )?;
            if !in_host_memory(memory) {
                return Err(Failure::invalid(format!(
                    "input '{name}' is not in host memory"
                )));
            }
            raw.extend_from_slice(std::slice::from_raw_parts(
                buffer as *const u8,
                length as usize,
            ));
        }
    }
    let elements = heman_server::binary::decode_bytes_elements(&Bytes::from(raw), 1)?;
    let element = heman_server::service::single_element(elements)?;
    Ok(Some(element))
}

/// Sends the request's one response: the reply's output, or the failure.
///
/// # Safety
/// `request` is a live Triton request with no response yet.
unsafe fn respond(
    request: *mut ffi::TRITONBACKEND_Request,
    outcome: Result<Reply, Failure>,
) -> Result<(), Failure> {
    let mut response = ptr::null_mut();
    // SAFETY: the caller's contract.
    unsafe {
        check(
            ffi::TRITONBACKEND_ResponseNew(&mut response, request),
            "creating a response",
        )?;
    }
    let error = match outcome.and_then(|reply| {
        // SAFETY: `response` was just created for this request.
        unsafe { write_output(response, &reply) }
    }) {
        Ok(()) => ptr::null_mut(),
        Err(failure) => failure.into_raw(),
    };
    // SAFETY: sending hands the response (and the error) to Triton; the
    // error object stays ours to delete.
    unsafe {
        let sent = ffi::TRITONBACKEND_ResponseSend(response, ffi::RESPONSE_COMPLETE_FINAL, error);
        if !error.is_null() {
            ffi::TRITONSERVER_ErrorDelete(error);
        }
        check(sent, "sending a response")
    }
}

/// Writes the reply's output: one BYTES element of shape `[1]` (a 4-byte
/// little-endian length, then the bytes).
///
/// # Safety
/// `response` is a live response without that output yet.
unsafe fn write_output(
    response: *mut ffi::TRITONBACKEND_Response,
    reply: &Reply,
) -> Result<(), Failure> {
    let name = CString::new(reply.output).expect("output names have no NUL");
    let length = u32::try_from(reply.element.len())
        .map_err(|_| Failure::internal("an output of 4 GiB or more"))?;
    let shape = [1i64];
    let size = 4 + reply.element.len();
    let (mut output, mut buffer, mut memory, mut memory_id) =
        (ptr::null_mut(), ptr::null_mut(), ffi::MEMORY_CPU, 0i64);
    // SAFETY: the output and its buffer of `size` bytes belong to the
    // response; host memory is asked for and checked before writing.
    unsafe {
        check(
            ffi::TRITONBACKEND_ResponseOutput(
                response,
                &mut output,
                name.as_ptr(),
                ffi::TYPE_BYTES,
                shape.as_ptr(),
                1,
            ),
            "creating an output",
        )?;
        check(
            ffi::TRITONBACKEND_OutputBuffer(
                output,
                &mut buffer,
                size as u64,
                &mut memory,
                &mut memory_id,
            ),
            "an output buffer",
        )?;
        if !in_host_memory(memory) {
            return Err(Failure::internal(
                "Triton gave an output buffer outside host memory",
            ));
        }
        let out = std::slice::from_raw_parts_mut(buffer as *mut u8, size);
        out[..4].copy_from_slice(&length.to_le_bytes());
        out[4..].copy_from_slice(&reply.element);
    }
    Ok(())
}
