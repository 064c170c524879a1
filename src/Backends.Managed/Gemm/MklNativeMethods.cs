using System.Runtime.InteropServices;

namespace Lockstep.Backends.Managed.Gemm;

/// <summary>Intel MKL's single dynamic library (libmkl_rt), LP64 interface: 32-bit integers.</summary>
internal static unsafe partial class MklNativeMethods
{
    /// <summary>Bound to the file actually loaded by <see cref="NativeLibraries.Bind"/>.</summary>
    internal const string Library = "libmkl_rt";

    internal const int RowMajor = 101;
    internal const int NoTrans = 111;
    internal const int Trans = 112;

    internal static readonly string[] RequiredExports = ["cblas_sgemm", "cblas_dgemm", "mkl_get_version_string", "MKL_Set_Num_Threads"];

    [LibraryImport(Library, EntryPoint = "cblas_sgemm")]
    internal static partial void Sgemm(int layout, int transA, int transB, int m, int n, int k, float alpha,
        float* a, int lda, float* b, int ldb, float beta, float* c, int ldc);

    [LibraryImport(Library, EntryPoint = "cblas_dgemm")]
    internal static partial void Dgemm(int layout, int transA, int transB, int m, int n, int k, double alpha,
        double* a, int lda, double* b, int ldb, double beta, double* c, int ldc);

    [LibraryImport(Library, EntryPoint = "mkl_get_version_string")]
    internal static partial void GetVersionString(byte* buffer, int length);

    [LibraryImport(Library, EntryPoint = "MKL_Set_Num_Threads")]
    internal static partial void SetNumThreads(int threads);

    internal const int ThreadingSequential = 1;

    /// <summary>Picks MKL's threading layer (0 Intel OpenMP, 1 sequential, 3 GNU OpenMP); effective before the first call.</summary>
    [LibraryImport(Library, EntryPoint = "MKL_Set_Threading_Layer")]
    internal static partial int SetThreadingLayer(int layer);

    /// <summary>Conditional numerical reproducibility, "auto": MKL's best code path for this CPU, but results that do not
    /// depend on the alignment of the operands in memory (pooled arrays land anywhere).</summary>
    internal const int CbwrAuto = 2;
    internal const int CbwrSuccess = 0;

    [LibraryImport(Library, EntryPoint = "MKL_CBWR_Set")]
    internal static partial int CbwrSet(int settings);

    /// <summary>Threads for MKL calls made by the calling thread (0 = back to the global setting); returns the previous.</summary>
    [LibraryImport(Library, EntryPoint = "MKL_Set_Num_Threads_Local")]
    internal static partial int SetNumThreadsLocal(int threads);

    [LibraryImport(Library, EntryPoint = "MKL_Get_Max_Threads")]
    internal static partial int GetMaxThreads();
}
