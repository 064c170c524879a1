using System.Runtime.InteropServices;
using System.Text.RegularExpressions;

namespace Lockstep.Backends.Managed.Gemm;

/// <summary>OpenBLAS's cblas_?gemm through libopenblas.so.0 (Debian: libopenblas0-pthread).</summary>
public sealed unsafe partial class OpenBlasGemmProvider : IGemmProvider
{
    public const string Install = "apt-get install libopenblas0-pthread (Debian main; ./build.sh does this in its environment)";

    /// <summary>Where libopenblas is looked for, in order.</summary>
    public static readonly IReadOnlyList<string> DefaultCandidates =
    [
        "libopenblas.so.0", "libopenblas.so",
        "/usr/lib/x86_64-linux-gnu/libopenblas.so.0", "/usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblas.so.0",
        "/usr/lib/x86_64-linux-gnu/openblas-openmp/libopenblas.so.0", "/usr/lib/x86_64-linux-gnu/openblas-serial/libopenblas.so.0",
    ];

    /// <summary>Loads OpenBLAS from <paramref name="candidates"/> (default <see cref="DefaultCandidates"/>) and sets its threads.</summary>
    /// <exception cref="GemmProviderException">No candidate loads; the message lists each attempt and how to install OpenBLAS.</exception>
    public OpenBlasGemmProvider(int threads, IEnumerable<string>? candidates = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(threads, 1);
        var trace = new List<string>();
        if (!NativeLibraries.TryLoad(candidates ?? DefaultCandidates, OpenBlasNativeMethods.RequiredExports, trace, out var handle, out string path))
        {
            throw GemmProviderException.NotLoadable("openblas", trace, Install);
        }
        NativeLibraries.Bind(OpenBlasNativeMethods.Library, handle, path);
        string config = Marshal.PtrToStringUTF8((IntPtr)OpenBlasNativeMethods.GetConfig())?.Trim() ?? "";
        var version = VersionPattern().Match(config);
        Version = version.Success ? version.Groups[1].Value : "unknown";
        OpenBlasNativeMethods.SetNumThreads(threads);
        Threads = threads;
        Details = $"{config} ({path})";
    }

    public string Name => "openblas";
    public string Version { get; }
    public string Details { get; }
    public int Threads { get; }

    [GeneratedRegex(@"OpenBLAS\s+([0-9][0-9A-Za-z.\-]*)")]
    private static partial Regex VersionPattern();

    public void Sgemm(bool transA, bool transB, int m, int n, int k, float alpha, ReadOnlySpan<float> a, int lda,
        ReadOnlySpan<float> b, int ldb, float beta, Span<float> c, int ldc)
    {
        if (!GemmArguments.Check<float>(transA, transB, m, n, k, a.Length, lda, b.Length, ldb, c.Length, ldc)) return;
        if (k == 0) { GemmArguments.ScaleOnly(m, n, beta, c, ldc); return; }
        fixed (float* pa = a, pb = b, pc = c)
        {
            OpenBlasNativeMethods.Sgemm(OpenBlasNativeMethods.RowMajor, transA ? OpenBlasNativeMethods.Trans : OpenBlasNativeMethods.NoTrans,
                transB ? OpenBlasNativeMethods.Trans : OpenBlasNativeMethods.NoTrans, m, n, k, alpha, pa, lda, pb, ldb, beta, pc, ldc);
        }
    }

    public void Dgemm(bool transA, bool transB, int m, int n, int k, double alpha, ReadOnlySpan<double> a, int lda,
        ReadOnlySpan<double> b, int ldb, double beta, Span<double> c, int ldc)
    {
        if (!GemmArguments.Check<double>(transA, transB, m, n, k, a.Length, lda, b.Length, ldb, c.Length, ldc)) return;
        if (k == 0) { GemmArguments.ScaleOnly(m, n, beta, c, ldc); return; }
        fixed (double* pa = a, pb = b, pc = c)
        {
            OpenBlasNativeMethods.Dgemm(OpenBlasNativeMethods.RowMajor, transA ? OpenBlasNativeMethods.Trans : OpenBlasNativeMethods.NoTrans,
                transB ? OpenBlasNativeMethods.Trans : OpenBlasNativeMethods.NoTrans, m, n, k, alpha, pa, lda, pb, ldb, beta, pc, ldc);
        }
    }

    /// <summary>The library stays loaded for the process (its entry points are bound once).</summary>
    public void Dispose() { }

    public override string ToString() => $"openblas {Version}, {Threads} threads";
}
