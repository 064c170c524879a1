using System.Runtime.InteropServices;

namespace Lockstep.Backends.Managed.Gemm;

/// <summary>OpenBLAS (libopenblas.so.0), 32-bit integer interface as Debian ships it.</summary>
internal static unsafe partial class OpenBlasNativeMethods
{
    /// <summary>Bound to the file actually loaded by <see cref="NativeLibraries.Bind"/>.</summary>
    internal const string Library = "libopenblas";

    internal const int RowMajor = 101;
    internal const int NoTrans = 111;
    internal const int Trans = 112;

    internal static readonly string[] RequiredExports = ["cblas_sgemm", "cblas_dgemm", "openblas_get_config", "openblas_set_num_threads"];

    [LibraryImport(Library, EntryPoint = "cblas_sgemm")]
    internal static partial void Sgemm(int layout, int transA, int transB, int m, int n, int k, float alpha,
        float* a, int lda, float* b, int ldb, float beta, float* c, int ldc);

    [LibraryImport(Library, EntryPoint = "cblas_dgemm")]
    internal static partial void Dgemm(int layout, int transA, int transB, int m, int n, int k, double alpha,
        double* a, int lda, double* b, int ldb, double beta, double* c, int ldc);

    /// <summary>A static string: "OpenBLAS 0.3.21 DYNAMIC_ARCH NO_AFFINITY Haswell MAX_THREADS=64".</summary>
    [LibraryImport(Library, EntryPoint = "openblas_get_config")]
    internal static partial byte* GetConfig();

    [LibraryImport(Library, EntryPoint = "openblas_set_num_threads")]
    internal static partial void SetNumThreads(int threads);

    [LibraryImport(Library, EntryPoint = "openblas_get_num_threads")]
    internal static partial int GetNumThreads();
}
