namespace Lockstep.Layers;

/// <summary>
/// POOL: x [N, C, H, W] → y [N, C, H', W'], no parameters; max pooling keeps its switches for backward. The layer owns
/// the switches (kept across destination forwards of one shape); y belongs to the caller.
/// </summary>
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

    public override void Forward(ITensor x, ITensor y)
    {
        ArgumentNullException.ThrowIfNull(y);
        var switches = _forward?.Switches;
        if (Spec.Mode == PoolMode.Max && (switches is null || switches.Shape != y.Shape))
        {
            switches?.Dispose();
            switches = Backend.Zeros(y.Shape, DType.Int64);
        }
        if (_forward is null || !ReferenceEquals(_forward.Y, y) || !ReferenceEquals(_forward.Switches, switches))
        {
            _forward = new PoolResult(y, switches);
        }
        Backend.Pool2d(x, Spec, _forward);
        Remember(x);
    }

    public override ITensor? Backward(ITensor dy, bool needDx) =>
        needDx ? Backend.Pool2dBackward(dy, Input(), Forwarded(), Spec) : null;

    public override void Backward(ITensor dy, ITensor? dx)
    {
        if (dx is not null) Backend.Pool2dBackward(dy, Input(), Forwarded(), Spec, dx);
    }

    private PoolResult Forwarded() => _forward ?? throw new InvalidOperationException($"{Name}: backward before forward");

    protected override void Dispose(bool disposing)
    {
        if (disposing) _forward?.Switches?.Dispose();
        base.Dispose(disposing);
    }
}
