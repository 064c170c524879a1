using Lockstep.Backends.Managed;
using Lockstep.Backends.Managed.Gemm;

namespace Lockstep.Tests;

/// <summary>Seeded data, error measures and the backends the tests run on.</summary>
internal static class TestSupport
{
    /// <summary>Uniform values in [−1, 1) from a fixed seed.</summary>
    public static double[] Random(int count, int seed)
    {
        var random = new Random(seed);
        var data = new double[count];
        for (int i = 0; i < count; i++) data[i] = 2 * random.NextDouble() - 1;
        return data;
    }

    /// <summary>Rounds to float32 and back, so that a float64 reference sees exactly the float32 inputs.</summary>
    public static double[] RoundToSingle(double[] data) => Array.ConvertAll(data, v => (double)(float)v);

    /// <summary>‖a − b‖∞ / max(‖b‖∞, tiny), the design's norm-wise relative error.</summary>
    public static double RelativeError(ReadOnlySpan<double> actual, ReadOnlySpan<double> expected)
    {
        Assert.Equal(expected.Length, actual.Length);
        double diff = 0, scale = 0;
        for (int i = 0; i < expected.Length; i++)
        {
            double d = Math.Abs(actual[i] - expected[i]);
            if (double.IsNaN(d)) return double.PositiveInfinity;
            diff = Math.Max(diff, d);
            scale = Math.Max(scale, Math.Abs(expected[i]));
        }
        return diff / Math.Max(scale, 1e-300);
    }

    public static void Close(ReadOnlySpan<double> actual, ReadOnlySpan<double> expected, double tolerance, string what)
    {
        double error = RelativeError(actual, expected);
        Assert.True(error <= tolerance, $"{what}: relative error {error:E3} > {tolerance:E0}");
    }

    public static double Tolerance(DType dtype) => dtype == DType.Float64 ? 1e-12 : 1e-5;

    /// <summary>Host data for <paramref name="dtype"/>: float32 cases use values exactly representable in float32.</summary>
    public static double[] Input(int count, int seed, DType dtype) =>
        dtype == DType.Float32 ? RoundToSingle(Random(count, seed)) : Random(count, seed);

    /// <summary>The backend most tests run on: the best provider this environment has (MKL where it is installed).</summary>
    public static ManagedBackend Backend() => new("auto", 1);
}

/// <summary>Which native GEMM libraries this environment has installed, so that a provider that should load must.</summary>
internal static class InstalledLibraries
{
    /// <summary>True when the Debian package is installed (dpkg's status file), or the library file is on disk.</summary>
    public static bool Has(string provider) => provider switch
    {
        "managed" => true,
        "mkl" => DebianPackageInstalled("libmkl-rt") || AnyFile(MklGemmProvider.DefaultCandidates),
        "openblas" => DebianPackageInstalled("libopenblas0-pthread") || DebianPackageInstalled("libopenblas0-openmp")
            || DebianPackageInstalled("libopenblas0-serial") || AnyFile(OpenBlasGemmProvider.DefaultCandidates),
        _ => false,
    };

    private static bool AnyFile(IEnumerable<string> candidates) => candidates.Any(c => Path.IsPathRooted(c) && File.Exists(c));

    private static bool DebianPackageInstalled(string package)
    {
        const string status = "/var/lib/dpkg/status";
        if (!File.Exists(status)) return false;
        string? current = null;
        foreach (string line in File.ReadLines(status))
        {
            if (line.StartsWith("Package: ", StringComparison.Ordinal)) current = line[9..].Trim();
            else if (current == package && line.StartsWith("Status: ", StringComparison.Ordinal)) return line.EndsWith("install ok installed", StringComparison.Ordinal);
        }
        return false;
    }
}
