/* SPDX-License-Identifier: MIT */
/*
 * device/opencl_int.h — the few OpenCL types and constants the opencl
 * backend uses, declared here so that nothing needs OpenCL headers to
 * build.  The values are OpenCL 1.2's ABI (CL/cl.h); the backend loads
 * the ICD loader (libOpenCL.so.1) at run time.
 *
 * Also the names of the kernels the backend builds from its OpenCL C.
 */
#ifndef HMMFS_DEVICE_OPENCL_INT_H
#define HMMFS_DEVICE_OPENCL_INT_H

#include <stddef.h>
#include <stdint.h>

typedef int32_t cl_int;
typedef uint32_t cl_uint;
typedef uint64_t cl_ulong;
typedef cl_ulong cl_bitfield;
typedef cl_bitfield cl_device_type;
typedef cl_bitfield cl_mem_flags;
typedef cl_bitfield cl_command_queue_properties;
typedef cl_uint cl_platform_info;
typedef cl_uint cl_device_info;
typedef cl_uint cl_program_build_info;
typedef cl_uint cl_event_info;
typedef intptr_t cl_context_properties;
typedef struct _cl_platform_id *cl_platform_id;
typedef struct _cl_device_id *cl_device_id;
typedef struct _cl_context *cl_context;
typedef struct _cl_command_queue *cl_command_queue;
typedef struct _cl_mem *cl_mem;
typedef struct _cl_program *cl_program;
typedef struct _cl_kernel *cl_kernel;
typedef struct _cl_event *cl_event;

enum {
	CL_SUCCESS				= 0,
	CL_DEVICE_NOT_FOUND			= -1,
	CL_DEVICE_NOT_AVAILABLE			= -2,
	CL_COMPILER_NOT_AVAILABLE		= -3,
	CL_MEM_OBJECT_ALLOCATION_FAILURE	= -4,
	CL_OUT_OF_RESOURCES			= -5,
	CL_OUT_OF_HOST_MEMORY			= -6,
	CL_BUILD_PROGRAM_FAILURE		= -11,
	CL_EXEC_STATUS_ERROR_FOR_EVENTS_IN_WAIT_LIST = -14,
	CL_INVALID_VALUE			= -30,
	CL_INVALID_PLATFORM			= -32,
	CL_INVALID_DEVICE			= -33,
	CL_INVALID_BUFFER_SIZE			= -61,
	CL_PLATFORM_NOT_FOUND_KHR		= -1001,
};

#define CL_FALSE			0
#define CL_TRUE				1
#define CL_PLATFORM_NAME		0x0902
#define CL_DEVICE_TYPE_ALL		0xFFFFFFFFull
#define CL_DEVICE_MAX_MEM_ALLOC_SIZE	0x1010
#define CL_DEVICE_NAME			0x102B
#define CL_MEM_READ_WRITE		(1ull << 0)
#define CL_PROGRAM_BUILD_LOG		0x1183

/*
 * The kernels (OpenCL C in opencl.c).  Parameters, in order:
 *   fill, xor, add:  buffer, u64 offset, u64 length, u32 value (low 8 bits)
 *   compare:         buffer a, u64 offset, buffer b, u64 offset, u64 length,
 *                    buffer of one u32 flag, set to 1 if they differ
 *   xxh64:           buffer, buffer of spans {u64 offset, u64 length}
 *                    (offset 8-byte aligned, length a multiple of 32), u64
 *                    first span, u64 spans, buffer of XXH64's four u64
 *                    lanes, updated in place; one group of four work-items
 */
#define OCL_KERNEL_FILL		"hmmfs_fill"
#define OCL_KERNEL_XOR		"hmmfs_xor"
#define OCL_KERNEL_ADD		"hmmfs_add"
#define OCL_KERNEL_COMPARE	"hmmfs_compare"
#define OCL_KERNEL_XXH64	"hmmfs_xxh64"

#endif
