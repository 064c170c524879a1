namespace Lockstep.Backends.Managed.Gemm;

/// <summary>
/// A general matrix product on row-major spans, BLAS's ?gemm: C = alpha·op(A)·op(B) + beta·C with op(A) [M × K],
/// op(B) [K × N], C [M × N]; lda, ldb, ldc are the row strides of A, B and C as stored. With beta = 0, C is written
/// without being read (NaN or garbage in C does not propagate), as BLAS specifies.
/// Implementations check the arguments with <see cref="GemmArguments.Check{T}"/> before any native call.
/// </summary>
public interface IGemmProvider : IDisposable
{
    /// <summary>"mkl", "openblas" or "managed".</summary>
    string Name { get; }

    /// <summary>The library's version, short: "2020.4", "0.3.29", "5.0.0".</summary>
    string Version { get; }

    /// <summary>What the library says about itself (MKL's version string, OpenBLAS's configuration) and where it was loaded from.</summary>
    string Details { get; }

    /// <summary>The threads the library was told to use.</summary>
    int Threads { get; }

    void Sgemm(bool transA, bool transB, int m, int n, int k, float alpha, ReadOnlySpan<float> a, int lda,
        ReadOnlySpan<float> b, int ldb, float beta, Span<float> c, int ldc);

    void Dgemm(bool transA, bool transB, int m, int n, int k, double alpha, ReadOnlySpan<double> a, int lda,
        ReadOnlySpan<double> b, int ldb, double beta, Span<double> c, int ldc);
}
