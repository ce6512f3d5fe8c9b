//! The part of Triton's C API the backend uses (TRITONBACKEND API 1.19,
//! TRITONSERVER API 1.34: Triton 2.51), declared from its public
//! documentation (`tritonbackend.h`, `tritonserver.h`). The functions are
//! Triton's own: the server has loaded them before it loads this library.

#![allow(non_camel_case_types, missing_docs)]

use std::ffi::c_char;
use std::os::raw::{c_int, c_void};

macro_rules! opaque {
    ($($name:ident),*) => {$(
        /// An object owned by Triton, only ever seen through a pointer.
        #[repr(C)]
        pub struct $name {
            _private: [u8; 0],
        }
    )*};
}

opaque!(
    TRITONSERVER_Error,
    TRITONSERVER_Message,
    TRITONBACKEND_Backend,
    TRITONBACKEND_Model,
    TRITONBACKEND_ModelInstance,
    TRITONBACKEND_Request,
    TRITONBACKEND_Response,
    TRITONBACKEND_Input,
    TRITONBACKEND_Output
);

/// The API version this backend is written against.
pub const API_MAJOR: u32 = 1;
pub const API_MINOR: u32 = 19;

/// `TRITONSERVER_Error_Code`.
pub const ERROR_INTERNAL: c_int = 1;
pub const ERROR_NOT_FOUND: c_int = 2;
pub const ERROR_INVALID_ARG: c_int = 3;
pub const ERROR_UNAVAILABLE: c_int = 4;
pub const ERROR_UNSUPPORTED: c_int = 5;

/// `TRITONSERVER_DataType`: variable-length byte strings.
pub const TYPE_BYTES: c_int = 13;
/// `TRITONSERVER_MemoryType`: host memory, and pinned host memory.
pub const MEMORY_CPU: c_int = 0;
pub const MEMORY_CPU_PINNED: c_int = 1;
/// `TRITONSERVER_ParameterType`: a string parameter.
pub const PARAMETER_STRING: c_int = 0;
/// `TRITONBACKEND_ArtifactType`: files on a local file system.
pub const ARTIFACT_FILESYSTEM: c_int = 0;
/// `TRITONSERVER_ResponseCompleteFlag`: the request's last response.
pub const RESPONSE_COMPLETE_FINAL: u32 = 1;
/// `TRITONSERVER_RequestReleaseFlag`: the request is done with.
pub const REQUEST_RELEASE_ALL: u32 = 1;

extern "C" {
    pub fn TRITONSERVER_ErrorNew(code: c_int, msg: *const c_char) -> *mut TRITONSERVER_Error;
    pub fn TRITONSERVER_ErrorDelete(error: *mut TRITONSERVER_Error);
    pub fn TRITONSERVER_ErrorMessage(error: *mut TRITONSERVER_Error) -> *const c_char;
    pub fn TRITONSERVER_MessageSerializeToJson(
        message: *mut TRITONSERVER_Message,
        base: *mut *const c_char,
        byte_size: *mut usize,
    ) -> *mut TRITONSERVER_Error;
    pub fn TRITONSERVER_MessageDelete(
        message: *mut TRITONSERVER_Message,
    ) -> *mut TRITONSERVER_Error;

    pub fn TRITONBACKEND_ApiVersion(major: *mut u32, minor: *mut u32) -> *mut TRITONSERVER_Error;

    pub fn TRITONBACKEND_ModelName(
        model: *mut TRITONBACKEND_Model,
        name: *mut *const c_char,
    ) -> *mut TRITONSERVER_Error;
    pub fn TRITONBACKEND_ModelVersion(
        model: *mut TRITONBACKEND_Model,
        version: *mut u64,
    ) -> *mut TRITONSERVER_Error;
    pub fn TRITONBACKEND_ModelRepository(
        model: *mut TRITONBACKEND_Model,
        artifact_type: *mut c_int,
        location: *mut *const c_char,
    ) -> *mut TRITONSERVER_Error;
    pub fn TRITONBACKEND_ModelConfig(
        model: *mut TRITONBACKEND_Model,
        config_version: u32,
        model_config: *mut *mut TRITONSERVER_Message,
    ) -> *mut TRITONSERVER_Error;
    pub fn TRITONBACKEND_ModelState(
        model: *mut TRITONBACKEND_Model,
        state: *mut *mut c_void,
    ) -> *mut TRITONSERVER_Error;
    pub fn TRITONBACKEND_ModelSetState(
        model: *mut TRITONBACKEND_Model,
        state: *mut c_void,
    ) -> *mut TRITONSERVER_Error;
    pub fn TRITONBACKEND_ModelInstanceModel(
        instance: *mut TRITONBACKEND_ModelInstance,
        model: *mut *mut TRITONBACKEND_Model,
    ) -> *mut TRITONSERVER_Error;
    pub fn TRITONBACKEND_ModelInstanceReportStatistics(
        instance: *mut TRITONBACKEND_ModelInstance,
        request: *mut TRITONBACKEND_Request,
        success: bool,
        exec_start_ns: u64,
        compute_start_ns: u64,
        compute_end_ns: u64,
        exec_end_ns: u64,
    ) -> *mut TRITONSERVER_Error;
    pub fn TRITONBACKEND_ModelInstanceReportBatchStatistics(
        instance: *mut TRITONBACKEND_ModelInstance,
        batch_size: u64,
        exec_start_ns: u64,
        compute_start_ns: u64,
        compute_end_ns: u64,
        exec_end_ns: u64,
    ) -> *mut TRITONSERVER_Error;

    pub fn TRITONBACKEND_RequestInput(
        request: *mut TRITONBACKEND_Request,
        name: *const c_char,
        input: *mut *mut TRITONBACKEND_Input,
    ) -> *mut TRITONSERVER_Error;
    pub fn TRITONBACKEND_RequestParameterCount(
        request: *mut TRITONBACKEND_Request,
        count: *mut u32,
    ) -> *mut TRITONSERVER_Error;
    pub fn TRITONBACKEND_RequestParameter(
        request: *mut TRITONBACKEND_Request,
        index: u32,
        key: *mut *const c_char,
        parameter_type: *mut c_int,
        value: *mut *const c_void,
    ) -> *mut TRITONSERVER_Error;
    pub fn TRITONBACKEND_RequestRelease(
        request: *mut TRITONBACKEND_Request,
        release_flags: u32,
    ) -> *mut TRITONSERVER_Error;

    pub fn TRITONBACKEND_InputProperties(
        input: *mut TRITONBACKEND_Input,
        name: *mut *const c_char,
        datatype: *mut c_int,
        shape: *mut *const i64,
        dims_count: *mut u32,
        byte_size: *mut u64,
        buffer_count: *mut u32,
    ) -> *mut TRITONSERVER_Error;
    pub fn TRITONBACKEND_InputBuffer(
        input: *mut TRITONBACKEND_Input,
        index: u32,
        buffer: *mut *const c_void,
        buffer_byte_size: *mut u64,
        memory_type: *mut c_int,
        memory_type_id: *mut i64,
    ) -> *mut TRITONSERVER_Error;

    pub fn TRITONBACKEND_ResponseNew(
        response: *mut *mut TRITONBACKEND_Response,
        request: *mut TRITONBACKEND_Request,
    ) -> *mut TRITONSERVER_Error;
    pub fn TRITONBACKEND_ResponseOutput(
        response: *mut TRITONBACKEND_Response,
        output: *mut *mut TRITONBACKEND_Output,
        name: *const c_char,
        datatype: c_int,
        shape: *const i64,
        dims_count: u32,
    ) -> *mut TRITONSERVER_Error;
    pub fn TRITONBACKEND_OutputBuffer(
        output: *mut TRITONBACKEND_Output,
        buffer: *mut *mut c_void,
        buffer_byte_size: u64,
        memory_type: *mut c_int,
        memory_type_id: *mut i64,
    ) -> *mut TRITONSERVER_Error;
    pub fn TRITONBACKEND_ResponseSend(
        response: *mut TRITONBACKEND_Response,
        send_flags: u32,
        error: *mut TRITONSERVER_Error,
    ) -> *mut TRITONSERVER_Error;
}
