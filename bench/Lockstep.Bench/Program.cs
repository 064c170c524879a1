using Lockstep.Bench;

return Cli.Run(args, Console.Out, Console.Error);
