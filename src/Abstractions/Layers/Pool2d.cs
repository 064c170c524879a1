namespace Lockstep.Layers;

/// <summary>POOL: x [N, C, H, W] → y [N, C, H', W'], no parameters; max pooling keeps its switches for backward.</summary>
public sealed class Pool2d : Layer
{
    private PoolResult? _forward;

    public Pool2d(IBackend backend, PoolSpec spec) : base(backend, spec?.Name ?? "POOL")
    {
        ArgumentNullException.ThrowIfNull(spec);
        Spec = spec;
    }

    public PoolSpec Spec { get; }
    public override string Kind => "POOL";

    public override ITensor Forward(ITensor x)
    {
        var result = Backend.Pool2d(x, Spec);
        _forward?.Switches?.Dispose();   // the previous output belongs to its caller
        _forward = result;
        Remember(x);
        return result.Y;
    }

    public override ITensor? Backward(ITensor dy, bool needDx) =>
        needDx
            ? Backend.Pool2dBackward(dy, Input(), _forward ?? throw new InvalidOperationException($"{Name}: backward before forward"), Spec)
            : null;

    protected override void Dispose(bool disposing)
    {
        if (disposing) _forward?.Switches?.Dispose();
        base.Dispose(disposing);
    }
}
