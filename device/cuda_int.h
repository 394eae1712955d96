/* SPDX-License-Identifier: MIT */
/*
 * device/cuda_int.h — the few CUDA driver-API types and constants the
 * cuda backend uses, declared here so that nothing needs a CUDA toolkit
 * to build.  The values are the driver's ABI (cuda.h of CUDA 11 to 13);
 * the fake driver of the tests (tests/fakecuda/) implements the same
 * entry points with the same types.
 *
 * Also the names of the kernels the backend's PTX module defines, which
 * the fake driver recognises and runs as C.
 */
#ifndef HMMFS_DEVICE_CUDA_INT_H
#define HMMFS_DEVICE_CUDA_INT_H

#include <stddef.h>

typedef int CUresult;
typedef int CUdevice;
typedef struct CUctx_st *CUcontext;
typedef struct CUstream_st *CUstream;
typedef struct CUevent_st *CUevent;
typedef struct CUmod_st *CUmodule;
typedef struct CUfunc_st *CUfunction;
typedef unsigned long long CUdeviceptr;

enum {
	CUDA_SUCCESS				= 0,
	CUDA_ERROR_INVALID_VALUE		= 1,
	CUDA_ERROR_OUT_OF_MEMORY		= 2,
	CUDA_ERROR_NOT_INITIALIZED		= 3,
	CUDA_ERROR_DEINITIALIZED		= 4,
	CUDA_ERROR_STUB_LIBRARY			= 34,
	CUDA_ERROR_INSUFFICIENT_DRIVER		= 35,
	CUDA_ERROR_DEVICE_UNAVAILABLE		= 46,
	CUDA_ERROR_NO_DEVICE			= 100,
	CUDA_ERROR_INVALID_DEVICE		= 101,
	CUDA_ERROR_INVALID_IMAGE		= 200,
	CUDA_ERROR_INVALID_CONTEXT		= 201,
	CUDA_ERROR_NO_BINARY_FOR_GPU		= 209,
	CUDA_ERROR_ECC_UNCORRECTABLE		= 214,
	CUDA_ERROR_INVALID_PTX			= 218,
	CUDA_ERROR_NVLINK_UNCORRECTABLE		= 220,
	CUDA_ERROR_JIT_COMPILER_NOT_FOUND	= 221,
	CUDA_ERROR_UNSUPPORTED_PTX_VERSION	= 222,
	CUDA_ERROR_INVALID_HANDLE		= 400,
	CUDA_ERROR_NOT_FOUND			= 500,
	CUDA_ERROR_NOT_READY			= 600,
	CUDA_ERROR_ILLEGAL_ADDRESS		= 700,
	CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES	= 701,
	CUDA_ERROR_LAUNCH_TIMEOUT		= 702,
	CUDA_ERROR_CONTEXT_IS_DESTROYED		= 709,
	CUDA_ERROR_ASSERT			= 710,
	CUDA_ERROR_HOST_MEMORY_ALREADY_REGISTERED = 712,
	CUDA_ERROR_HOST_MEMORY_NOT_REGISTERED	= 713,
	CUDA_ERROR_HARDWARE_STACK_ERROR		= 714,
	CUDA_ERROR_ILLEGAL_INSTRUCTION		= 715,
	CUDA_ERROR_MISALIGNED_ADDRESS		= 716,
	CUDA_ERROR_INVALID_ADDRESS_SPACE	= 717,
	CUDA_ERROR_INVALID_PC			= 718,
	CUDA_ERROR_LAUNCH_FAILED		= 719,
	CUDA_ERROR_NOT_PERMITTED		= 800,
	CUDA_ERROR_NOT_SUPPORTED		= 801,
	CUDA_ERROR_SYSTEM_NOT_READY		= 802,
	CUDA_ERROR_SYSTEM_DRIVER_MISMATCH	= 803,
	CUDA_ERROR_UNKNOWN			= 999,
};

#define CU_STREAM_NON_BLOCKING		0x1
#define CU_EVENT_DISABLE_TIMING		0x2
#define CU_MEMHOSTREGISTER_PORTABLE	0x01

/*
 * The kernels of the backend's PTX module.  Parameters, in order:
 *   fill, xor, add:  u64 dst pointer, u64 length, u32 value (low 8 bits used)
 *   compare:         u64 a, u64 b, u64 length, u64 pointer to a u32 flag
 *                    that becomes 1 if the ranges differ (never reset)
 *   xxh64:           u64 pointer to nspans {u64 address, u64 length}
 *                    (address 8-byte aligned, length a multiple of 32),
 *                    u64 nspans, u64 pointer to XXH64's four u64 lanes,
 *                    updated in place; one block of four threads
 */
#define CUDA_KERNEL_FILL	"hmmfs_fill"
#define CUDA_KERNEL_XOR		"hmmfs_xor"
#define CUDA_KERNEL_ADD		"hmmfs_add"
#define CUDA_KERNEL_COMPARE	"hmmfs_compare"
#define CUDA_KERNEL_XXH64	"hmmfs_xxh64"

#endif
