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

    /// <summary>
    /// Convolution algorithm: auto (Winograd F(2×2, 3×3) and F(2×2, 5×5) for 3×3 and 5×5 stride-1 convolutions with at
    /// least 32 channels in and out, a direct kernel for small ones, im2col + GEMM elsewhere) | im2col (im2col + GEMM
    /// everywhere: each output one plain dot product).
    /// </summary>
    public string Convolution { get; set; } = "auto";
}

public sealed class TorchOptions
{
    /// <summary>cpu | cuda | cuda:N | auto (cuda when a CUDA device is available, else cpu; the report says which and why).</summary>
    public string Device { get; set; } = "cpu";

    /// <summary>libtorch intra-op threads; 0 = all cores.</summary>
    public int Threads { get; set; }

    /// <summary>Ask libtorch for deterministic algorithms (cuDNN's included).</summary>
    public bool Deterministic { get; set; }

    /// <summary>
    /// Let cuBLAS and cuDNN round float32 products to TF32 (10-bit mantissa) on GPUs that have it: faster, but about
    /// 1e-3 relative, far outside the float32 conformance tolerance. Off by default; process-wide, like Threads.
    /// </summary>
    public bool AllowTF32 { get; set; }

    /// <summary>
    /// Let libtorch run convolutions on CUDA through cuDNN (torch.backends.cudnn.enabled; on by default, as in PyTorch).
    /// Off, it uses its own CUDA kernels (im2col and cuBLAS): slower, but clear of the cuDNN algorithms that lose
    /// precision in full float32 (README, GPU figures: cuDNN 9.19's weight gradient of wide 5×5 layers). No effect on the
    /// CPU; process-wide, like Threads.
    /// </summary>
    public bool CuDnn { get; set; } = true;

    /// <summary>A copy with another device (the CLI's per-backend "torch:cuda").</summary>
    public TorchOptions WithDevice(string device)
    {
        var copy = (TorchOptions)MemberwiseClone();
        copy.Device = device;
        return copy;
    }
}
