namespace Lockstep.Configuration;

/// <summary>The "Lockstep" configuration section (appsettings.json, LOCKSTEP__… variables, --Lockstep:… arguments).</summary>
public sealed class LockstepOptions
{
    public const string Section = "Lockstep";

    /// <summary>Registry name of the backend: "managed", "torch", or any registered name.</summary>
    public string Backend { get; set; } = "managed";

    public DType DType { get; set; } = DType.Float32;

    public ManagedOptions Managed { get; set; } = new();

    public TorchOptions Torch { get; set; } = new();
}

public sealed class ManagedOptions
{
    /// <summary>GEMM provider: auto | mkl | openblas | managed.</summary>
    public string Gemm { get; set; } = "auto";

    /// <summary>Threads for kernels and BLAS; 0 = all cores.</summary>
    public int Threads { get; set; }
}

public sealed class TorchOptions
{
    /// <summary>cpu | cuda | auto.</summary>
    public string Device { get; set; } = "cpu";

    /// <summary>libtorch intra-op threads; 0 = all cores.</summary>
    public int Threads { get; set; }

    /// <summary>Ask libtorch for deterministic algorithms.</summary>
    public bool Deterministic { get; set; }
}
