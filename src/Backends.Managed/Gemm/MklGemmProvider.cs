using System.Runtime.InteropServices;
using System.Text.RegularExpressions;

namespace Lockstep.Backends.Managed.Gemm;

/// <summary>Intel MKL's cblas_?gemm through libmkl_rt (Debian non-free: libmkl-rt, with libomp-dev for its OpenMP runtime).</summary>
public sealed unsafe partial class MklGemmProvider : IGemmProvider
{
    public const string Install = "apt-get install libmkl-rt libomp-dev (Debian non-free; ./build.sh does this in its environment)";

    /// <summary>Where libmkl_rt is looked for, in order.</summary>
    public static readonly IReadOnlyList<string> DefaultCandidates =
    [
        "libmkl_rt.so", "libmkl_rt.so.2", "libmkl_rt.so.1",
        "/usr/lib/x86_64-linux-gnu/libmkl_rt.so", "/usr/lib/x86_64-linux-gnu/libmkl_rt.so.2", "/usr/lib/x86_64-linux-gnu/libmkl_rt.so.1",
        "/opt/intel/oneapi/mkl/latest/lib/libmkl_rt.so.2", "/opt/intel/oneapi/mkl/latest/lib/intel64/libmkl_rt.so.2",
    ];

    /// <summary>Where the Intel OpenMP runtime that MKL's default threading layer loads is looked for.</summary>
    public static readonly IReadOnlyList<string> DefaultOpenMpCandidates =
        ["libiomp5.so", "/usr/lib/x86_64-linux-gnu/libiomp5.so"];

    /// <summary>Loads MKL from <paramref name="candidates"/> (default <see cref="DefaultCandidates"/>) and sets its threads.</summary>
    /// <exception cref="GemmProviderException">No candidate loads; the message lists each attempt and how to install MKL.</exception>
    public MklGemmProvider(int threads, IEnumerable<string>? candidates = null, IEnumerable<string>? openMpCandidates = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(threads, 1);
        var trace = new List<string>();
        if (!NativeLibraries.TryLoad(candidates ?? DefaultCandidates, MklNativeMethods.RequiredExports, trace, out var handle, out string path))
        {
            throw GemmProviderException.NotLoadable("mkl", trace, Install);
        }
        // MKL's default (Intel) threading layer dlopens libiomp5 on its first call and kills the process with
        // "undefined symbol: omp_get_num_procs" when it is missing; find out first, unless a layer was chosen.
        if (Environment.GetEnvironmentVariable("MKL_THREADING_LAYER") is null or "" or "INTEL" or "intel"
            && !NativeLibraries.TryLoad(openMpCandidates ?? DefaultOpenMpCandidates, ["omp_get_num_procs"], trace, out _, out _))
        {
            trace.Add("MKL's Intel threading layer needs libiomp5.so, which did not load (or set MKL_THREADING_LAYER=GNU or SEQUENTIAL)");
            throw GemmProviderException.NotLoadable("mkl", trace, Install);
        }
        NativeLibraries.Bind(MklNativeMethods.Library, handle, path);
        // One thread wanted: MKL's sequential layer, so no OpenMP runtime of MKL's runs beside libtorch's in the same
        // process (the managed backend's workers are the parallelism). Honoured only before MKL's first product, and
        // never over an explicit MKL_THREADING_LAYER.
        if (threads == 1 && Environment.GetEnvironmentVariable("MKL_THREADING_LAYER") is null or "")
        {
            _ = MklNativeMethods.SetThreadingLayer(MklNativeMethods.ThreadingSequential);   // returns the layer now in use
        }

        byte* buffer = stackalloc byte[256];
        new Span<byte>(buffer, 256).Clear();
        MklNativeMethods.GetVersionString(buffer, 255);
        string versionString = Marshal.PtrToStringUTF8((IntPtr)buffer)?.Trim() ?? "";
        Version = ShortVersion(versionString);
        string cnr = Reproducibility.Value;
        MklNativeMethods.SetNumThreads(threads);
        Threads = threads;
        Details = $"{versionString}, {cnr} ({path})";
    }

    /// <summary>
    /// Set once per process, before MKL's first product (later, or while another thread is inside MKL, it may not
    /// take or may crash). Without it, the same product gave results 1 ulp apart depending on where the pooled
    /// arrays happened to lie, so a network trained alone and beside others drifted apart. An explicit MKL_CBWR wins.
    /// </summary>
    private static readonly Lazy<string> Reproducibility = new(() =>
        Environment.GetEnvironmentVariable("MKL_CBWR") is { Length: > 0 } user ? $"MKL_CBWR={user}"
        : MklNativeMethods.CbwrSet(MklNativeMethods.CbwrAuto) == MklNativeMethods.CbwrSuccess ? "CNR auto"
        : "CNR unavailable");

    public string Name => "mkl";
    public string Version { get; }
    public string Details { get; }
    public int Threads { get; }

    /// <summary>"… Version 2020.0.4 Product Build …" → "2020.4" (Intel's "2020 Update 4"); newer "Version 2024.2-…" → "2024.2".</summary>
    internal static string ShortVersion(string versionString)
    {
        var full = FullVersion().Match(versionString);
        if (full.Success)
        {
            int major = int.Parse(full.Groups[1].Value), minor = int.Parse(full.Groups[2].Value), update = int.Parse(full.Groups[3].Value);
            return major >= 2000 && minor == 0 ? $"{major}.{update}" : $"{major}.{minor}.{update}";
        }
        var any = AnyVersion().Match(versionString);
        return any.Success ? any.Groups[1].Value.TrimEnd('.') : "unknown";
    }

    [GeneratedRegex(@"Version (\d+)\.(\d+)\.(\d+)")]
    private static partial Regex FullVersion();

    [GeneratedRegex(@"Version ([0-9.]+)")]
    private static partial Regex AnyVersion();

    public void Sgemm(bool transA, bool transB, int m, int n, int k, float alpha, ReadOnlySpan<float> a, int lda,
        ReadOnlySpan<float> b, int ldb, float beta, Span<float> c, int ldc)
    {
        if (!GemmArguments.Check<float>(transA, transB, m, n, k, a.Length, lda, b.Length, ldb, c.Length, ldc)) return;
        if (k == 0) { GemmArguments.ScaleOnly(m, n, beta, c, ldc); return; }
        fixed (float* pa = a, pb = b, pc = c)
        {
            // MKL's thread count is process-wide; the local setting keeps each backend's Threads its own.
            _ = MklNativeMethods.SetNumThreadsLocal(Threads);
            MklNativeMethods.Sgemm(MklNativeMethods.RowMajor, transA ? MklNativeMethods.Trans : MklNativeMethods.NoTrans,
                transB ? MklNativeMethods.Trans : MklNativeMethods.NoTrans, m, n, k, alpha, pa, lda, pb, ldb, beta, pc, ldc);
        }
    }

    public void Dgemm(bool transA, bool transB, int m, int n, int k, double alpha, ReadOnlySpan<double> a, int lda,
        ReadOnlySpan<double> b, int ldb, double beta, Span<double> c, int ldc)
    {
        if (!GemmArguments.Check<double>(transA, transB, m, n, k, a.Length, lda, b.Length, ldb, c.Length, ldc)) return;
        if (k == 0) { GemmArguments.ScaleOnly(m, n, beta, c, ldc); return; }
        fixed (double* pa = a, pb = b, pc = c)
        {
            // MKL's thread count is process-wide; the local setting keeps each backend's Threads its own.
            _ = MklNativeMethods.SetNumThreadsLocal(Threads);
            MklNativeMethods.Dgemm(MklNativeMethods.RowMajor, transA ? MklNativeMethods.Trans : MklNativeMethods.NoTrans,
                transB ? MklNativeMethods.Trans : MklNativeMethods.NoTrans, m, n, k, alpha, pa, lda, pb, ldb, beta, pc, ldc);
        }
    }

    /// <summary>The library stays loaded for the process (its entry points are bound once).</summary>
    public void Dispose() { }

    public override string ToString() => $"mkl {Version}, {Threads} threads";
}
