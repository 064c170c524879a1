using Microsoft.Extensions.Configuration;

namespace Lockstep.Configuration;

/// <summary>
/// Builds configuration the .NET way: appsettings.json, then environment variables (LOCKSTEP__BACKEND=torch),
/// then the command line (--Lockstep:Backend torch, or the short forms in <see cref="ShortSwitches"/>).
/// Later sources win.
/// </summary>
public static class LockstepConfiguration
{
    /// <summary>Short command-line switches and the keys they set.</summary>
    public static readonly IReadOnlyDictionary<string, string> ShortSwitches = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase)
    {
        ["--backend"] = "Lockstep:Backend",
        ["--dtype"] = "Lockstep:DType",
        ["--gemm"] = "Lockstep:Managed:Gemm",
        ["--conv"] = "Lockstep:Managed:Convolution",
        ["--device"] = "Lockstep:Torch:Device",
    };

    public static IConfigurationRoot Build(string[] args, string? basePath = null)
    {
        ArgumentNullException.ThrowIfNull(args);
        return new ConfigurationBuilder()
            .SetBasePath(basePath ?? AppContext.BaseDirectory)
            .AddJsonFile("appsettings.json", optional: true)
            .AddEnvironmentVariables()
            .AddCommandLine(args, ShortSwitches.ToDictionary(p => p.Key, p => p.Value, StringComparer.OrdinalIgnoreCase))
            .Build();
    }

    /// <summary>Binds the "Lockstep" section; a value that does not parse is an error naming the key.</summary>
    public static LockstepOptions Bind(IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        var options = new LockstepOptions();
        var section = configuration.GetSection(LockstepOptions.Section);
        try
        {
            // DType is parsed by hand so that the short forms (f32, f64) work as well as the enum names.
            options.Backend = section[nameof(LockstepOptions.Backend)] ?? options.Backend;
            section.GetSection(nameof(LockstepOptions.Managed)).Bind(options.Managed);
            section.GetSection(nameof(LockstepOptions.Torch)).Bind(options.Torch);
        }
        catch (InvalidOperationException e)
        {
            throw new ArgumentException($"configuration: {e.Message}", e);
        }
        string? dtype = section[nameof(LockstepOptions.DType)];
        if (dtype is not null) options.DType = DTypes.Parse(dtype);
        if (options.DType == DType.Int64) throw new ArgumentException("configuration: Lockstep:DType must be Float32 or Float64");
        if (options.Managed.Threads < 0) throw new ArgumentException($"configuration: Lockstep:Managed:Threads must be ≥ 0, got {options.Managed.Threads}");
        if (options.Torch.Threads < 0) throw new ArgumentException($"configuration: Lockstep:Torch:Threads must be ≥ 0, got {options.Torch.Threads}");
        return options;
    }
}
